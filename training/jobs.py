"""Training jobs on a server: one runs at a time, the others wait in a queue, each is followed by id.

`TrainingJobs` is the service behind the Studio's Train tab and its API (/train, /train_status,
/train_stop). A job is `training.run.train`, the function `python -m training METHOD` calls, with
settings parsed by the same dataclasses (training.job_request), started by one worker thread of the
server, with a `training.progress.JobCallback` that reports progress and ends the run early on Stop,
on the server's time cap, or (on ZeroGPU) at the end of each bounded GPU call.

Where it runs: off ZeroGPU in a child process (training.job_child), so that a run that exhausts
memory or crashes inside a library fails its job and leaves the server and its visitors alone (and
the Trainer's output goes to the job's train.log); on ZeroGPU in `spaces.GPU` calls, which already
run in a fork of the server (only the server's own process may make them). Both run `run_slice`.
Stop is cooperative (the callback checks a file after every optimizer step) and saves the step
reached first; progress travels through files, so it reads the same from either.

Everything a job is lives in its folder under the jobs folder ($STUDIO_JOBS_DIR, default
outputs/jobs/): status.json (the service's record, replaced atomically), params.json (the parsed
settings), data.jsonl (an upload, checked), progress.json (from the callback), model/ (the output,
written atomically by training.run) and model.checkpoints/. Finished models are appended to
models.runtime.toml in the jobs folder and added to the app's Registry at once; a new service on
the same folder (after a restart) registers them again and finds every job by its id.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from summarizer import settings
from summarizer.data import resolve_source
from summarizer.errors import UserError, one_line
from summarizer.hosting import on_zero_gpu
from summarizer.registry import ModelSpec, Registry, load_specs

from . import checkpoints
from .config import RunSettings, as_dict
from .job_request import (DEFAULT_SAVE_STEPS, TrainingCaps, check_limits, check_upload, parse_request,
                          training_caps)
from .methods import get_method
from .progress import RunInterrupted, read_progress, request_stop

log = logging.getLogger(__name__)

JOBS_ENV = "STUDIO_JOBS_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JOBS_DIR = PROJECT_ROOT / "outputs" / "jobs"
TRAIN_LOG = "train.log"  # a child process's output (the Trainer's own lines, a crash's traceback)
OUTCOME_FILE = "outcome.json"  # a child process's result, written last (none: it died)
RUNTIME_REGISTRY = "models.runtime.toml"
STATES = ("queued", "running", "done", "failed", "stopped")
ACTIVE = ("queued", "running")
CHECKPOINT_EVAL_ROWS = 16  # dev rows scored at each checkpoint: a trend, not the final figure
SLICE_SECONDS = 120  # one ZeroGPU call (summarizer.hosting.MAX_DURATION_S)
SLICE_TRAIN_SHARE = 0.6  # of a call spent on steps; the rest loads, saves and evaluates
EVAL_SECONDS_PER_ROW = 0.3  # the ETA's guess for the final evaluation until a checkpoint is timed
_RECORD_KEYS = ("id", "state", "name", "method", "base", "client", "params", "created", "started",
                "finished", "model", "error", "rouge", "checkpoint", "slices", "data")


def run_slice(folder: str, deadline: float | None, budget_s: float | None) -> dict:
    """One call of a job's training: `train` from its latest complete checkpoint until done,
    stopped, or `budget_s` has passed. Plain arguments and a plain dict back, because on ZeroGPU
    this runs in a forked process."""
    from .progress import JobCallback
    from .run import train

    folder = Path(folder)
    request = json.loads((folder / "params.json").read_text(encoding="utf-8"))
    method = request["method"]
    settings = RunSettings(**request["settings"])
    config = get_method(method).Config(**request["config"])
    callback = JobCallback(folder, evaluate=_checkpoint_scorer(method, settings),
                           deadline=deadline, budget_s=budget_s, max_steps=settings.max_steps)
    try:
        result = train(method, settings, config, progress=False, callbacks=[callback])
    except RunInterrupted as end:
        return {"outcome": end.reason, "step": end.step}
    except UserError as err:
        return {"outcome": "failed", "error": str(err)}
    except Exception as err:  # a library failure ends this job, never the server
        log.exception("training job %s failed", folder.name)
        return {"outcome": "failed", "error": one_line(err)}
    spec = result.spec
    return {"outcome": "done", "step": result.global_step, "rouge": result.rouge,
            "kind": spec.kind, "path": spec.path, "base": spec.base}


def _checkpoint_scorer(method: str, settings: RunSettings):
    """Dev ROUGE of a complete checkpoint, through the registry as the app loads models."""
    rows = []

    def score(folder: Path) -> dict | None:
        from .data import load_training_data
        from .evaluation import evaluate_spec

        if not settings.limit_eval:
            return None
        try:
            if not rows:
                rows.extend(load_training_data(settings.data, settings.limit_train, settings.eval_split,
                                               settings.limit_eval)[1][:CHECKPOINT_EVAL_ROWS])
            kind = get_method(method).KIND
            spec = ModelSpec("checkpoint", kind, str(folder),
                             base=settings.base if kind != "seq2seq" else None)
            started = time.perf_counter()
            scores = evaluate_spec(spec, rows, settings.eval_batch_size,
                                   settings.eval_max_new_tokens, progress=False)
            return {**scores, "seconds": time.perf_counter() - started}
        except Exception as err:  # a trend point missing is no reason to end the training
            log.warning("checkpoint %s not scored: %s", folder, one_line(err))
            return None
    return score


class ChildProcessSlices:
    """`run_slice` in a child process (training.job_child), one at a time; `terminate` ends it."""

    def __init__(self):
        self._child: subprocess.Popen | None = None
        self.terminated = False

    def __call__(self, folder: str, deadline: float | None, budget_s: float | None) -> dict:
        if self.terminated:  # the server is going: start nothing
            return {"outcome": "shutdown"}
        outcome_file = Path(folder) / OUTCOME_FILE
        outcome_file.unlink(missing_ok=True)
        # the server's working directory and environment, so relative paths mean the same there
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)}
        argv = [sys.executable, "-m", "training.job_child", folder, json.dumps(deadline),
                json.dumps(budget_s)]
        with open(Path(folder) / TRAIN_LOG, "ab") as output:
            self._child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                           stderr=subprocess.STDOUT)
            try:
                code = self._child.wait()
            finally:
                self._child = None
        if outcome_file.is_file():
            return json.loads(outcome_file.read_text(encoding="utf-8"))
        if self.terminated:  # the server is going, not the job failing
            return {"outcome": "shutdown"}
        return {"outcome": "failed", "error": _how_it_died(code, Path(folder) / TRAIN_LOG)}

    def terminate(self) -> None:
        self.terminated = True
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()


def _how_it_died(code: int, log_file: Path) -> str:
    """A child that wrote no outcome: killed (the kernel's out-of-memory killer sends SIGKILL),
    or a crash whose last words are at the end of its log."""
    if code == -signal.SIGKILL:
        return ("the training process was killed (SIGKILL), most likely out of memory: try a "
                "smaller batch, shorter sources (max_source_length) or LoRA")
    if code < 0:
        return f"the training process ended on {signal.Signals(-code).name}"
    try:
        with open(log_file, "rb") as log_text:
            log_text.seek(max(0, log_file.stat().st_size - 4096))
            lines = [line for line in log_text.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return f"the training process exited with code {code}" + (f": {one_line(lines[-1])}" if lines else "")


def _gpu_slices(slice_seconds: float):
    """(the function each call runs, its training budget): on ZeroGPU a `spaces.GPU` call of
    `slice_seconds`, else the whole run in a child process, unbounded."""
    if not on_zero_gpu():
        return ChildProcessSlices(), None
    try:
        import spaces
    except ImportError:
        return run_slice, None
    return spaces.GPU(duration=max(1, math.ceil(slice_seconds)))(run_slice), slice_seconds * SLICE_TRAIN_SHARE


def runtime_specs(path: Path) -> list[ModelSpec]:
    """The entries of a runtime registry file; none when it does not exist yet."""
    if not path.is_file() or "[models." not in path.read_text(encoding="utf-8"):
        return []
    return load_specs(path)


class TrainingJobs:
    """Submit, follow and stop training jobs; finished models join `registry` at once.

    `on_registered(spec)` is called after a model is added (e.g. to refresh the page's model
    lists). Thread-safe; one worker thread, started on the first job."""

    def __init__(self, registry: Registry, folder: str | os.PathLike | None = None,
                 data_source: str | None = None, caps: TrainingCaps | None = None,
                 on_registered=None, slice_seconds: float = SLICE_SECONDS):
        self.registry = registry
        self.folder = Path(folder or settings.text(JOBS_ENV) or DEFAULT_JOBS_DIR).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.runtime_file = self.folder / RUNTIME_REGISTRY
        self.data_source = resolve_source(data_source)
        self.caps = caps or training_caps()
        self.on_registered = on_registered
        self._slice, self._budget = _gpu_slices(slice_seconds)
        if isinstance(self._slice, ChildProcessSlices):  # at exit, no training left running
            weakref.finalize(self, self._slice.terminate)
        self.slice_seconds = slice_seconds
        self._jobs: dict[str, dict] = {}
        self._wake = threading.Condition(threading.RLock())
        self._worker: threading.Thread | None = None
        self._closing = False
        self._restore()

    # ------------------------------------------------------------------ records on disk

    def _job_folder(self, job_id: str) -> Path:
        return self.folder / job_id

    def _save(self, job: dict) -> None:
        checkpoints.write_atomically(self._job_folder(job["id"]) / "status.json",
                                     json.dumps({k: job.get(k) for k in _RECORD_KEYS}, indent=2))

    def _restore(self) -> None:
        """Jobs and models of an earlier run of the server: finished ones as they were, queued
        ones queued again, a run cut off by the restart stopped (its checkpoints kept, so the
        visitor can still register the last one)."""
        for path in sorted(self.folder.glob("*/status.json")):
            try:
                job = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("skipping unreadable job record %s", path)
                continue
            if job.get("state") == "running":
                step = read_progress(path.parent).get("checkpoint")
                job.update(state="stopped", finished=time.time(), checkpoint=step,
                           error="interrupted by a server restart")
                self._save(job)
            self._jobs[job["id"]] = job
        try:
            specs = runtime_specs(self.runtime_file)
        except UserError as err:  # the app still starts; the models trained here are missing
            log.error("trained models not registered: %s", err)
            specs = []
        for spec in specs:
            self._add_to_registry(spec)
        if any(j["state"] == "queued" for j in self._jobs.values()):
            self._start_worker()

    def _add_to_registry(self, spec: ModelSpec) -> ModelSpec | None:
        spec = self._share_base(spec)
        try:
            self.registry.add(spec)
        except UserError as err:
            log.warning("trained model %s not registered: %s", spec.name, err)
            return None
        if self.on_registered is not None:
            self.on_registered(spec)
        return spec

    def _share_base(self, spec: ModelSpec) -> ModelSpec:
        """An adapter names its base as the registry does, so both use one copy in memory."""
        if not spec.base:
            return spec
        for other in self.registry.specs.values():
            if other.kind == "seq2seq" and other.path and _same_location(other.path, spec.base):
                return dataclasses.replace(spec, base=other.path)
        return spec

    # ------------------------------------------------------------------ the API

    def bases(self) -> list[str]:
        """Registry models a job can start from (seq2seq checkpoints)."""
        return [n for n, s in self.registry.specs.items() if s.kind == "seq2seq"]

    def submit(self, params: dict, client_id: str = "local", upload: str | os.PathLike | None = None) -> str:
        """Check everything, queue the job and return its id at once; a refusal starts nothing."""
        if not self.caps.enabled:
            raise UserError(self.caps.reason)
        method, settings, config = parse_request(params)
        if params.get("limit_eval") is None:  # training's default, within this server's bound
            settings = dataclasses.replace(settings, limit_eval=min(settings.limit_eval or 0,
                                                                    self.caps.max_limit_eval))
        check_limits(settings, self.caps)
        base = self._resolve_base(settings.base)
        self._check_name(settings.name)
        rows = check_upload(upload, self.caps) if upload else None
        if rows is None:
            self._check_dialogsum(settings)
        with self._wake:
            self._check_quota(client_id)
            self._check_name(settings.name)
            job_id = secrets.token_hex(6)
            folder = self._job_folder(job_id)
            folder.mkdir()
            data = self._write_data(folder, rows) if rows else self.data_source
            fixed = dataclasses.replace(
                settings, base=base, data=data, output=str(folder / "model"), resume=True,
                overwrite=False, save_steps=settings.save_steps if params.get("save_steps") is not None
                else min(DEFAULT_SAVE_STEPS, settings.max_steps))
            checkpoints.write_atomically(folder / "params.json", json.dumps(
                {"method": method, "settings": as_dict(fixed), "config": as_dict(config)}, indent=2))
            job = {"id": job_id, "state": "queued", "name": settings.name, "method": method,
                   "base": settings.base, "client": client_id, "created": time.time(),
                   "params": {k: v for k, v in params.items() if v is not None}, "slices": 0,
                   "data": "upload" if rows else "dialogsum"}
            self._jobs[job_id] = job
            self._save(job)
            self._start_worker()
            self._wake.notify_all()
        return job_id

    def status(self, job_id: str) -> dict:
        """state, step, max_steps, losses [[step, loss]], rouge [{step, rouge1, ...}], model,
        error, queue_position, eta_seconds, trainable_share and the rest (see the report)."""
        with self._wake:
            job = dict(self._get(job_id))
            queued = sorted((j for j in self._jobs.values() if j["state"] == "queued"),
                            key=lambda j: j["created"])
        return _status(job, read_progress(self._job_folder(job_id)), queued, self.caps)

    def stop(self, job_id: str) -> dict:
        """Stop a job: a queued one at once; a running one after its current step, keeping that
        step as a checkpoint (see register_checkpoint). A finished job is left as it is."""
        with self._wake:
            job = self._get(job_id)
            if job["state"] == "queued":
                job.update(state="stopped", finished=time.time(), error="stopped before it started")
                self._save(job)
            elif job["state"] == "running":
                request_stop(self._job_folder(job_id))
        return self.status(job_id)

    def jobs(self, client_id: str | None = None) -> list[dict]:
        """Every job (or one client's), newest first, as short status dicts."""
        with self._wake:
            ids = [j["id"] for j in sorted(self._jobs.values(), key=lambda j: -j["created"])
                   if client_id is None or j.get("client") == client_id]
        return [self.status(i) for i in ids]

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.2) -> dict:
        """Block until the job has ended (or `timeout`); its status."""
        end = None if timeout is None else time.time() + timeout
        while (status := self.status(job_id))["state"] in ACTIVE:
            if end is not None and time.time() > end:
                break
            time.sleep(poll)
        return status

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker after the running job (which is asked to stop)."""
        with self._wake:
            self._closing = True
            for job in self._jobs.values():
                if job["state"] == "running":
                    request_stop(self._job_folder(job["id"]))
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)
            if self._worker.is_alive() and isinstance(self._slice, ChildProcessSlices):
                self._slice.terminate()  # the stop was not reached in time: its checkpoint stays

    def model_folder(self, job_id: str) -> Path:
        job = self._get(job_id)
        folder = self._job_folder(job_id) / "model"
        if not job.get("model") or not folder.is_dir():
            raise UserError(f"job {job_id} has no finished model to download")
        return folder

    def model_zip(self, job_id: str) -> Path:
        """The model's folder as a zip (made once, atomically), for download."""
        folder = self.model_folder(job_id)
        target = self._job_folder(job_id) / f"{self._get(job_id)['model']}.zip"
        if not target.is_file():
            partial = shutil.make_archive(str(target.with_suffix(".partial")), "zip", folder)
            os.replace(partial, target)
        return target

    def register_checkpoint(self, job_id: str) -> str:
        """A stopped job's last complete checkpoint as a registered model (the visitor asked)."""
        from .job_export import export_checkpoint

        with self._wake:
            job = self._get(job_id)
            if job["state"] != "stopped" or job.get("model"):
                raise UserError(f"job {job_id} is {job['state']}" +
                                (f" and registered as {job['model']}" if job.get("model") else
                                 "; only a stopped job's checkpoint can be registered"))
            self._check_name(job["name"], ignore=job_id)
            spec = export_checkpoint(self._job_folder(job_id), job, self.runtime_file)
            self._finish_registration(job, spec)
            return job["model"]

    # ------------------------------------------------------------------ checks

    def _get(self, job_id: str) -> dict:
        job = self._jobs.get(str(job_id or "").strip())
        if job is None:
            raise UserError(f"no training job {job_id!r} on this server")
        return job

    def _resolve_base(self, name: str) -> str:
        spec = self.registry.specs.get(name)
        if spec is None or spec.kind != "seq2seq":
            raise UserError(f"unknown base {name!r}; choose one of {', '.join(self.bases())}")
        status = self.registry.status(name)
        if not status.ok:
            raise UserError(f"base {name} cannot load: {status.reason}")
        return spec.path

    def _check_name(self, name: str, ignore: str | None = None) -> None:
        taken = set(self.registry.names()) | {s.name for s in runtime_specs(self.runtime_file)}
        taken |= {j["name"] for j in self._jobs.values()
                  if j["state"] in ACTIVE and j["id"] != ignore}
        if name in taken:
            raise UserError(f"the name {name!r} is taken; choose another")

    def _check_quota(self, client_id: str) -> None:
        caps, jobs = self.caps, list(self._jobs.values())
        if sum(j["state"] in ACTIVE and j.get("client") == client_id for j in jobs) >= caps.jobs_per_client:
            raise UserError(f"you already have a training job queued or running (at most "
                            f"{caps.jobs_per_client} at a time); stop it or wait for it")
        if sum(j["state"] == "queued" for j in jobs) >= caps.max_queued:
            raise UserError(f"{caps.max_queued} jobs are already waiting; try again later")
        today = sum(j["created"] > time.time() - 86_400 for j in jobs)
        if caps.jobs_per_day is not None and today >= caps.jobs_per_day:
            raise UserError(f"this server's {caps.jobs_per_day} training jobs a day have been used; "
                            f"try again tomorrow")

    def _check_dialogsum(self, settings: RunSettings) -> None:
        from .data import load_training_data

        load_training_data(self.data_source, settings.limit_train, settings.eval_split, 1)

    @staticmethod
    def _write_data(folder: Path, rows: list[dict]) -> str:
        path = folder / "data.jsonl"
        checkpoints.write_atomically(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return str(path)

    # ------------------------------------------------------------------ the worker

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="training-jobs", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._closing and not any(j["state"] == "queued" for j in self._jobs.values()):
                    self._wake.wait()
                if self._closing:
                    return
                job = min((j for j in self._jobs.values() if j["state"] == "queued"),
                          key=lambda j: j["created"])
                job.update(state="running", started=time.time())
                self._save(job)
            try:
                self._run(job)
            except Exception as err:  # the worker outlives any one job
                log.exception("training job %s", job["id"])
                self._end(job, "failed", one_line(err))

    def _run(self, job: dict) -> None:
        folder = self._job_folder(job["id"])
        deadline = job["started"] + 60 * self.caps.max_minutes
        while True:
            job["slices"] = job.get("slices", 0) + 1
            outcome = self._slice(str(folder), deadline, self._budget)
            if outcome["outcome"] != "paused" or (folder / "stop").exists():
                break
        kind = outcome["outcome"]
        if kind == "shutdown":
            # Left "running" on disk: the next start finds it cut off (stopped, its checkpoint kept
            # for the visitor to register), as after a crash; no further job starts in a dying server.
            with self._wake:
                self._closing = True
            return
        if kind == "done":
            self._registered(job, outcome)
        elif kind == "paused":  # Stop came between two GPU calls
            self._end(job, "stopped", None)
        elif kind in ("stopped", "time-cap"):
            self._end(job, "stopped", None if kind == "stopped" else
                      f"stopped at the server's {self.caps.max_minutes:g}-minute limit")
        else:
            self._end(job, "failed", outcome.get("error") or "training failed")

    def _end(self, job: dict, state: str, error: str | None) -> None:
        with self._wake:
            checkpoint = read_progress(self._job_folder(job["id"])).get("checkpoint")
            job.update(state=state, finished=time.time(), error=error, checkpoint=checkpoint)
            self._save(job)

    def _registered(self, job: dict, outcome: dict) -> None:
        spec = ModelSpec(job["name"], outcome["kind"], outcome["path"], outcome["base"],
                         description=_description(job, outcome["step"]), speakers="dialogsum")
        with self._wake:
            job["rouge"] = outcome.get("rouge")
            try:
                self._check_name(job["name"], ignore=job["id"])
            except UserError as err:  # taken while it trained (e.g. a models.toml edit)
                self._end(job, "failed", f"trained, but not registered: {err}")
                return
            self._finish_registration(job, spec)

    def _finish_registration(self, job: dict, spec: ModelSpec) -> None:
        from .run import register, registry_toml

        register(self.runtime_file, registry_toml(spec, self.runtime_file))
        added = self._add_to_registry(spec)
        job.update(model=spec.name if added else None,
                   state="done" if job["state"] == "running" else job["state"],
                   finished=job.get("finished") if job["state"] != "running" else time.time(),
                   error=None if added else "trained, but the registry refused it")
        if job["state"] == "done":
            job["checkpoint"] = read_progress(self._job_folder(job["id"])).get("checkpoint")
        self._save(job)


def _same_location(a: str, b: str) -> bool:
    try:
        return a == b or Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _description(job: dict, steps: int) -> str:
    data = "an uploaded file" if job.get("data") == "upload" else "DialogSum"
    return (f"{job['method']} of {job['base']} on {data}, {steps} steps "
            f"(trained on this server, job {job['id']})")


def _status(job: dict, progress: dict, queued: list[dict], caps: TrainingCaps) -> dict:
    """The public view of one job (no client id, no server paths)."""
    settings = job.get("params", {})
    max_steps = progress.get("max_steps") or settings.get("max_steps")
    trainable, total = progress.get("trainable"), progress.get("total")
    rouge = list(progress.get("rouge", []))
    if job.get("rouge") and progress.get("checkpoint"):
        rouge = [r for r in rouge if r["step"] != progress["checkpoint"]] + [
            {"step": progress["checkpoint"], **job["rouge"]}]
    rouge = [{k: v for k, v in r.items() if k != "seconds"} for r in rouge if len(r) > 1]
    position = next((i + 1 for i, j in enumerate(queued) if j["id"] == job["id"]), None)
    return {
        "job_id": job["id"], "state": job["state"], "name": job["name"], "method": job["method"],
        "base": job["base"], "data": job.get("data"), "params": settings,
        "step": progress.get("step", 0), "max_steps": max_steps,
        "losses": progress.get("losses", []), "rouge": rouge,
        "final_rouge": job.get("rouge"), "model": job.get("model"), "error": job.get("error"),
        "checkpoint": progress.get("checkpoint"),
        "queue_position": position,
        "eta_seconds": _eta(job, progress) if job["state"] == "running" else None,
        "trainable": trainable, "total": total,
        "trainable_share": trainable / total if trainable and total else None,
        "created": job.get("created"), "started": job.get("started"), "finished": job.get("finished"),
        "caps": caps.as_dict(),
    }


def _eta(job: dict, progress: dict) -> float | None:
    """Seconds left: the remaining steps at the rate measured since training began, plus the
    final evaluation (timed at a checkpoint when one was scored, else a guess)."""
    origin, step, when = progress.get("rate_origin"), progress.get("step"), progress.get("step_time")
    max_steps = progress.get("max_steps")
    if not origin or not step or not when or not max_steps or step <= origin[1]:
        return None
    per_step = (when - origin[0]) / (step - origin[1])
    limit_eval = job.get("params", {}).get("limit_eval", 50) or 0
    timed = [r for r in progress.get("rouge", []) if r.get("seconds") and r.get("n")]
    per_row = timed[-1]["seconds"] / timed[-1]["n"] if timed else EVAL_SECONDS_PER_ROW
    left = (max_steps - step) * per_step + per_row * limit_eval - (time.time() - when)
    return max(0.0, round(left, 1))
