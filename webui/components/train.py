"""The Train tab: fine-tune a registry model from the page, follow the job, stop it, download it.

The form's settings are training's own fields (training.job_request.form_fields), and the API
names them the same way: /train(method, base, name, max_steps, ...) answers at once with a job id;
/train_status(job_id) and /train_stop(job_id) return the job's status dict (training.jobs). A
timer polls the status while the job is queued or running; a reload or a second tab finds the job
again from its id (the page's `?job=ID` link).

Wiring (webui/interface.py): `train = create_train_tab(studio)` inside a gr.Tab, then
`demo.load(*train["load"])` so that a `?job=ID` link opens on that job.
"""

from __future__ import annotations

import inspect

import gradio as gr
import pandas as pd

from summarizer.errors import UserError
from training.job_request import form_fields
from training.jobs import TrainingJobs
from training.methods import METHODS

from ..common import LIGHT, shown_to_user
from .vote import client_address

POLL_SECONDS = 2.0
TARGET_MODULES = ("q", "k", "v", "o", "wi_0", "wi_1", "wo")
# The page's own defaults where training's suit a long GPU run better than a first try on a CPU.
PAGE_DEFAULTS = {"max_steps": 300, "limit_train": 2000}


def _defaults(method: str) -> dict:
    return {f["name"]: f["default"] for f in form_fields(method)}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def status_text(status: dict) -> str:
    """One paragraph on where the job stands, for people (the API returns the dict itself)."""
    state, step, total = status["state"], status["step"], status["max_steps"]
    share = status.get("trainable_share")
    weights = (f" · trains {100 * share:.2f}% of {status['total'] / 1e6:.1f} M weights"
               if share else "")
    lines = {
        "queued": f"**Waiting**: number {status.get('queue_position')} in the queue.",
        "running": f"**Training**: step {step} of {total} · about {_duration(status['eta_seconds'])} "
                   f"left{weights}.",
        "done": f"**Done**: `{status['model']}` is now in Compare and Batch{weights}.",
        "failed": f"**Failed**: {status['error']}",
        "stopped": f"**Stopped** at step {status.get('checkpoint') or step} of {total}"
                   + (f": {status['error']}" if status.get("error") else "")
                   + (f" (its checkpoint is registered as `{status['model']}`)" if status.get("model")
                      else " (its last checkpoint is kept; register it below)" if status.get("checkpoint")
                      else ""),
    }
    return f"{lines[state]}\n\nJob `{status['job_id']}` · follow it from anywhere with `?job={status['job_id']}`"


def loss_frame(status: dict) -> pd.DataFrame:
    return pd.DataFrame(status["losses"] or [], columns=["step", "loss"])


def rouge_frame(status: dict) -> pd.DataFrame:
    rows = [{"step": r["step"], "ROUGE-1": round(r["rouge1"], 4), "ROUGE-2": round(r["rouge2"], 4),
             "ROUGE-L": round(r["rougeL"], 4), "dev rows": r["n"]} for r in status["rouge"]]
    return pd.DataFrame(rows, columns=["step", "ROUGE-1", "ROUGE-2", "ROUGE-L", "dev rows"])


class TrainHandlers:
    """The Train tab's events, on the server's TrainingJobs (their signatures are the API's)."""

    def __init__(self, jobs: TrainingJobs, catalog=None):
        self.jobs, self.catalog = jobs, catalog  # catalog: the Studio's models, refreshed as jobs finish

    def show(self, job: str):
        """Where `job` stands, as the tab shows it (and the Compare/Batch model lists once it is done)."""
        lists = (gr.skip(), gr.skip())
        if not (job or "").strip():
            return ("", loss_frame({"losses": []}), rouge_frame({"rouge": []}), gr.Button(visible=False),
                    gr.Button(visible=False), gr.File(visible=False), gr.Timer(active=False), *lists)
        with shown_to_user():
            current = self.jobs.status(job.strip())
        active = current["state"] in ("queued", "running")
        keepable = current["state"] == "stopped" and current.get("checkpoint") and not current.get("model")
        zipped = (str(self.jobs.model_zip(current["job_id"]))
                  if current["state"] == "done" and current["model"] else None)
        if current.get("model") and self.catalog is not None:
            lists = (gr.CheckboxGroup(choices=self.catalog.model_choices()),) * 2
        return (status_text(current), loss_frame(current), rouge_frame(current),
                gr.Button(visible=active), gr.Button(visible=bool(keepable)),
                gr.File(value=zipped, visible=bool(zipped)), gr.Timer(active=active), *lists)

    def train_status(self, job_id: str) -> dict:
        """The job's status: state (queued, running, done, failed, stopped), step, max_steps,
        losses [[step, loss]], rouge [{step, rouge1, rouge2, rougeL, rougeLsum, n}], model (its
        registry name once done), error, queue_position, eta_seconds, trainable_share, caps."""
        with shown_to_user():
            return self.jobs.status((job_id or "").strip())

    def train_stop(self, job_id: str) -> dict:
        """Stop a job (a running one saves the step it reached first); its status."""
        with shown_to_user():
            return self.jobs.stop((job_id or "").strip())

    def register_checkpoint(self, job: str):
        with shown_to_user():
            self.jobs.register_checkpoint(job.strip())
        return self.show(job)

    def stop_job(self, job: str):
        with shown_to_user():
            self.jobs.stop(job.strip())
        return self.show(job)

    def open_link(self, request: gr.Request):
        """A `?job=ID` link opens on that job (an unknown id opens on nothing)."""
        job = ((getattr(request, "query_params", None) or {}).get("job") or "").strip()
        try:
            self.jobs.status(job)
        except UserError:
            job = ""
        return (job, *self.show(job))

    def train(self, method: str = "lora", base: str = "mini-original", name: str = "", max_steps: float = 300,
              per_device_train_batch_size: float = 8, learning_rate: float | None = None,
              limit_train: float | None = 2000, lora_r: float | None = None,
              lora_alpha: float | None = None, target_modules: list[str] | None = None,
              num_virtual_tokens: float | None = None, prompt: str = "", upload: str | None = None,
              request: gr.Request = None) -> str:
        """Start a training job and return its id at once (follow it with /train_status).
        Settings are training's fields; method-specific ones apply to their method only; an
        `upload` (CSV/JSONL with dialogue and summary columns) replaces DialogSum train."""
        params = {"method": method, "base": base, "name": (name or "").strip(), "max_steps": max_steps,
                  "per_device_train_batch_size": per_device_train_batch_size,
                  "learning_rate": learning_rate, "limit_train": limit_train or None}
        if method == "lora":
            params.update(lora_r=lora_r, lora_alpha=lora_alpha, target_modules=target_modules or None)
        elif method == "prompt-tuning":
            params.update(num_virtual_tokens=num_virtual_tokens)
        if isinstance(prompt, str) and prompt.strip():
            params["prompt"] = prompt
        with shown_to_user():
            if not params["name"]:
                raise UserError("give the new model a name")
            return self.jobs.submit(params, client_address(request) or "anonymous", upload=upload)


def switch_method(chosen: str):
    """The method's own settings shown, and its default learning rate."""
    return (gr.Number(value=_defaults(chosen)["learning_rate"]), gr.Row(visible=chosen == "lora"),
            gr.Row(visible=chosen == "prompt-tuning"))


def create_train_tab(jobs: TrainingJobs, catalog=None, model_lists: list | None = None) -> dict:
    """The tab, wired to a TrainHandlers on `jobs`; `model_lists` (Compare's and Batch's model
    checkboxes) get a finished job's model."""
    handlers = TrainHandlers(jobs, catalog)
    form = _create_form(jobs)
    job_id = gr.Textbox(label="Job id", placeholder="a job id to follow", elem_id="train-job-id")
    status = gr.Markdown(elem_id="train-status")
    with gr.Row():
        losses = gr.LinePlot(loss_frame({"losses": []}), x="step", y="loss", label="Training loss",
                             elem_id="train-loss")
        rouge = gr.Dataframe(rouge_frame({"rouge": []}), label="Dev ROUGE at checkpoints",
                             interactive=False, elem_id="train-rouge")
    with gr.Row():
        stop = gr.Button("Stop", variant="stop", visible=False, elem_id="train-stop")
        keep = gr.Button("Register its last checkpoint", visible=False, elem_id="train-keep")
    download = gr.File(label="Download the model (zip)", visible=False, interactive=False,
                       elem_id="train-download")
    timer = gr.Timer(POLL_SECONDS, active=False)
    lists = list(model_lists or [gr.State(None), gr.State(None)])
    shown = [status, losses, rouge, stop, keep, download, timer, *lists]
    start = form.pop("start")
    inputs = [form[p] for p in inspect.signature(handlers.train).parameters if p in form]
    start.click(handlers.train, inputs, job_id, api_name="train",
                **LIGHT).success(handlers.show, job_id, shown, api_visibility="private", **LIGHT)
    job_id.submit(handlers.show, job_id, shown, api_visibility="private", **LIGHT)
    timer.tick(handlers.show, job_id, shown, api_visibility="private", **LIGHT)
    stop.click(handlers.stop_job, job_id, shown, api_visibility="private", **LIGHT)
    keep.click(handlers.register_checkpoint, job_id, shown, api_visibility="private", **LIGHT)
    gr.api(handlers.train_status, api_name="train_status", **LIGHT)
    gr.api(handlers.train_stop, api_name="train_stop", **LIGHT)
    if not jobs.caps.enabled:
        gr.Markdown(f"*{jobs.caps.reason}*")
    return {"jobs": jobs, "job_id": job_id, "load": (handlers.open_link, None, [job_id, *shown])}


def _create_form(jobs: TrainingJobs) -> dict:
    """The settings' components, keyed by training's field names (plus `upload` and `start`)."""
    caps, lora = jobs.caps, _defaults("lora")
    bases = jobs.bases()
    gr.Markdown(
        f"Fine-tune a model of this app on DialogSum or on your own dialogues, with the project's "
        f"training code (`python -m training`). One job runs at a time, others wait in line. "
        f"Limits here: {caps.max_steps:,} steps, {caps.max_minutes:g} minutes, batch "
        f"{caps.max_batch_size}, {caps.jobs_per_client} job per visitor at a time"
        + (f", {caps.jobs_per_day} jobs a day for everyone" if caps.jobs_per_day else "")
        + f"; uploads: CSV or JSONL with `dialogue` and `summary` columns, at most "
          f"{caps.max_upload_bytes // 1024 // 1024} MB and {caps.max_upload_rows:,} dialogues.")
    with gr.Row():
        method = gr.Radio(list(METHODS), value="lora", label="Method", elem_id="train-method")
        base = gr.Dropdown(bases, value="mini-original" if "mini-original" in bases else next(iter(bases), None),
                           label="Base model", elem_id="train-base",
                           allow_custom_value=True)  # checked by the service, which names the choices
        name = gr.Textbox(label="New model's name", placeholder="my-lora", elem_id="train-name")
    # No bounds on the numbers here: the service's refusal names the setting and this server's limit.
    with gr.Row():
        max_steps = gr.Number(PAGE_DEFAULTS["max_steps"], label="Steps", precision=0,
                              elem_id="train-steps")
        batch = gr.Number(lora["per_device_train_batch_size"], label="Batch size", precision=0)
        learning_rate = gr.Number(lora["learning_rate"], label="Learning rate", elem_id="train-lr")
        limit_train = gr.Number(PAGE_DEFAULTS["limit_train"], label="First N training dialogues "
                                "(0: all)", precision=0)
    with gr.Row(visible=True) as lora_row:
        lora_r = gr.Number(lora["lora_r"], label="LoRA r", precision=0)
        lora_alpha = gr.Number(lora["lora_alpha"], label="LoRA alpha", precision=0)
        targets = gr.CheckboxGroup(list(TARGET_MODULES), value=lora["target_modules"],
                                   label="Target modules")
    with gr.Row(visible=False) as prompt_row:
        virtual = gr.Number(_defaults("prompt-tuning")["num_virtual_tokens"], label="Virtual tokens",
                            precision=0)
    has_prompt = any(f["name"] == "prompt" for f in form_fields("lora"))
    prompt = gr.Textbox("", label="Prompt template", visible=has_prompt, elem_id="train-prompt")
    upload = gr.File(label="Your dialogues (optional; else DialogSum train)", file_types=[".csv", ".jsonl"],
                     type="filepath", elem_id="train-upload")
    start = gr.Button("Start training ▶", variant="primary", elem_id="train-start",
                      interactive=caps.enabled)

    method.change(switch_method, method, [learning_rate, lora_row, prompt_row], api_visibility="private")
    return {"method": method, "base": base, "name": name, "max_steps": max_steps,
            "per_device_train_batch_size": batch, "learning_rate": learning_rate,
            "limit_train": limit_train, "lora_r": lora_r, "lora_alpha": lora_alpha,
            "target_modules": targets, "num_virtual_tokens": virtual, "prompt": prompt,
            "upload": upload, "start": start}
