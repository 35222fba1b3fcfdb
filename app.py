"""DialogSum Studio: compare summarization models side by side in the browser.

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT respected)

This file only declares the interface and wires events to `summarizer.studio`, where the work is
done (and tested without a browser). Configuration, all server-side:
    $SUMMARIZER_REGISTRY  models (default models.toml)
    $DIALOGSUM_PATH       DialogSum folder for examples and shots (default: the hub dataset)
    $STUDIO_RESULTS       `python -m summarizer evaluate --output` JSON for the Benchmark tab
                          (default assets/results.json)
    $STUDIO_WARMUP        models to load in the background at start-up (comma-separated;
                          default: the pre-selected models; "none" to skip)
    $STUDIO_QUEUE_SIZE    requests that may wait in the queue (default 16)
"""

from __future__ import annotations

import logging
import os
import sys

import gradio as gr

from summarizer import studio as core
from summarizer.errors import UserError
from summarizer.prompts import DEFAULT_MAX_PROMPT_TOKENS, MAX_SHOTS, SHOT_STRATEGIES

log = logging.getLogger("dialogsum_studio")

CONCURRENCY = 1  # two CPU cores: one generation at a time is fastest for everyone
QUEUE_SIZE = int(os.environ.get("STUDIO_QUEUE_SIZE", "16"))

CSS = """
.ds-cards { display: flex; gap: 12px; align-items: stretch; flex-wrap: wrap; }
.ds-card { flex: 1 1 260px; min-width: 240px; border: 1px solid var(--border-color-primary);
  border-radius: 10px; padding: 12px; background: var(--block-background-fill); }
.ds-card-head { display: flex; gap: 8px; align-items: baseline; margin-bottom: 8px; flex-wrap: wrap; }
.ds-model { font-weight: 700; font-size: 1.05em; }
.ds-kind { font-size: .8em; color: var(--body-text-color-subdued); }
.ds-state { margin-left: auto; font-size: .8em; padding: 1px 8px; border-radius: 8px;
  background: var(--background-fill-secondary); }
.ds-done { background: #dcfce7; color: #14532d; }
.ds-error { background: #fee2e2; color: #7f1d1d; }
.ds-state.ds-error { padding: 1px 8px; }
div.ds-error { padding: 8px; border-radius: 6px; }
.ds-running { background: #e0f2fe; color: #0c4a6e; }
.ds-summary { white-space: pre-wrap; line-height: 1.45; min-height: 3em; }
.ds-summary mark { background: #fde68a; color: #111; padding: 0 1px; border-radius: 2px; }
.ds-streaming { color: var(--body-text-color-subdued); }
.ds-stats, .ds-note { font-size: .82em; color: var(--body-text-color-subdued); margin-top: 6px; }
.ds-notice { font-size: .85em; margin-top: 6px; padding: 4px 6px; border-radius: 6px;
  background: #fef9c3; color: #713f12; }
.ds-rouge { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: .85em; margin-top: 6px; }
.ds-rouge span { white-space: nowrap; }
.ds-prompt { margin-top: 6px; font-size: .85em; }
.ds-prompt pre { white-space: pre-wrap; max-height: 260px; overflow: auto; font-size: .9em; }
"""

INTRO = """# DialogSum Studio
Summarize a dialogue with several models at once: FLAN-T5 as released, fine-tuned and PEFT
versions, and the extractive *longest-3* baseline. Paste a conversation (or load one from DialogSum),
choose the models, and compare their summaries, speed and ROUGE against a reference.
"""

API_HELP = """### Use it from Python
```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")          # or "<user>/<space>" on Hugging Face
cards_html, rouge_table, chart, results, notes = client.predict(
    dialogue="#Person1#: Are you coming tonight?\\n#Person2#: Yes, I'll be there at eight.",
    reference="#Person2# will come tonight at eight.",
    models=["original", "peft-lora", "longest-3"],
    shot_mode="zero-shot",
    api_name="/compare",
)
for model in results["models"]:
    print(model["model"], model["summary"], model["rouge"], model["error"])

# a CSV/JSONL file with a `dialogue` column (optional `summary`, `id`, `topic`)
status, per_model, rows, csv_file = client.predict(
    file=handle_file("dialogues.csv"), models=["longest-3"], api_name="/batch")
```
Endpoints: `/compare`, `/load_example`, `/model_status`, `/batch`, `/benchmark`
(see “Use via API” at the bottom of the page).

**Limits**: dialogue {max_chars:,} characters; uploads {max_mb} MB and {max_rows} dialogues;
one request runs at a time and {queue} may wait — past that the app answers “busy, try again”.
"""


def _warm_models(studio: core.Studio) -> list[str]:
    value = os.environ.get("STUDIO_WARMUP")
    if value is None:
        return studio.default_models()
    if value.strip().lower() in ("", "none", "0", "no"):
        return []
    return [n.strip() for n in value.split(",") if n.strip() in studio.names()]


def build_app(studio: core.Studio | None = None, background: bool = True,
              queue_size: int = QUEUE_SIZE) -> gr.Blocks:
    """The Blocks of the app; `studio` defaults to one configured from the environment.

    One model request runs at a time; `queue_size` more may wait, and past that Gradio answers
    "This application is currently busy. Please try again." (the Python client: "Queue is full!
    Please try again.").
    """
    studio = studio or core.Studio()
    if background:
        studio.start_background(warm=_warm_models(studio))

    # ---- handlers: thin wrappers turning UserError into a message box -----------------------

    def model_status():
        """Each registry model's status (ready / loaded / error with the reason)."""
        studio.refresh_statuses()
        return gr.CheckboxGroup(choices=studio.model_choices()), studio.status_table()

    def page_load():
        studio.wait_for_statuses(15)
        return gr.CheckboxGroup(choices=studio.model_choices()), gr.CheckboxGroup(choices=studio.model_choices())

    def load_example(split: str = "validation", how: str = "random", index: float | None = -1):
        """A DialogSum dialogue with its reference(s) and topic: how = random | next | index."""
        try:
            picked = studio.pick_example(split, how, index)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return picked.dialogue, picked.reference, picked.topic, picked.index, picked.info

    def compare(dialogue: str, reference: str = "", topic: str = "",
                models: list[str] | None = None, shot_mode: str = "zero-shot", n_shots: float = 2,
                shot_strategy: str = "random", shot_ids: str = "", max_new_tokens: float = 100,
                num_beams: float = 1, do_sample: bool = False, temperature: float = 1.0,
                top_p: float = 1.0, seed: float = 0, max_prompt_tokens: float = DEFAULT_MAX_PROMPT_TOKENS):
        """Summaries of one dialogue by each chosen model, streamed, with ROUGE vs the reference."""
        try:
            shots = core.shot_settings(shot_mode, n_shots, shot_strategy, shot_ids)
            decoding = core.decoding_settings(max_new_tokens, num_beams, do_sample, temperature,
                                              top_p, seed, max_prompt_tokens)
            stream = studio.compare(dialogue, reference, models or [], shots, decoding, topic)
            for view in stream:
                if not view.done:
                    yield core.render_cards(view), gr.skip(), gr.skip(), gr.skip(), core.render_notes(view)
                else:
                    yield (core.render_cards(view), core.rouge_table(view), core.compare_figure(view),
                           view.to_dict(), core.render_notes(view))
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None

    def batch(file: str | None, models: list[str] | None = None, shot_mode: str = "zero-shot",
              n_shots: float = 2, max_new_tokens: float = 100, progress=gr.Progress()):
        """Summaries (and ROUGE where there is a reference) for every row of a CSV/JSONL file."""
        try:
            shots = core.shot_settings(shot_mode, n_shots)
            decoding = core.decoding_settings(max_new_tokens)
            output = studio.run_batch(file, models or [], shots, decoding,
                                      progress=lambda fraction, desc: progress(fraction, desc=desc))
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
        summary, rows = core.batch_tables(output)
        return output.message, summary, rows, str(output.csv_path)

    def benchmark():
        """Dataset-level ROUGE from the server's results file, with the course's published rows."""
        view = studio.benchmark()
        return view.note, core.benchmark_table(view), core.benchmark_figure(view)

    # ---- layout -------------------------------------------------------------------------------

    choices = studio.model_choices()
    defaults = studio.default_models()
    with gr.Blocks(title="DialogSum Studio", delete_cache=(3600, 3600), analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        dialogue = gr.Textbox(
                            label="Dialogue", lines=10, max_lines=20, elem_id="dialogue",
                            placeholder="#Person1#: Hi, is this seat free?\n#Person2#: Yes, go ahead.",
                            info=f"One turn per line; at most {core.MAX_DIALOGUE_CHARS:,} characters.")
                        reference = gr.Textbox(
                            value="", label="Reference summary (optional)", lines=2, max_lines=8, elem_id="reference",
                            info="Used for ROUGE. Several references: separate them with a blank line.")
                        with gr.Accordion("Load a DialogSum example", open=True):
                            with gr.Row():
                                split = gr.Dropdown(list(core.EXAMPLE_SPLITS), value="validation",
                                                    label="Split", scale=1)
                                index = gr.Number(value=0, precision=0, label="Example #", scale=1, minimum=0)
                                topic = gr.Textbox("", label="Topic", scale=2, max_lines=1,
                                                   info="used by topic-matched shots")
                            how_random = gr.Textbox("random", visible=False)
                            how_next = gr.Textbox("next", visible=False)
                            how_index = gr.Textbox("index", visible=False)
                            with gr.Row():
                                random_button = gr.Button("Random example", size="sm")
                                next_button = gr.Button("Next example ▶", size="sm")
                                index_button = gr.Button("Load #", size="sm")
                            example_info = gr.Markdown(label="Example")
                    with gr.Column(scale=2):
                        models = gr.CheckboxGroup(choices, value=defaults, label="Models",
                                                  info="status after each name", elem_id="models")
                        shot_mode = gr.Radio(list(core.SHOT_MODES), value="zero-shot", label="Prompt",
                                             elem_id="shot-mode",
                                             info="solved DialogSum train examples put before the dialogue")
                        with gr.Row():
                            n_shots = gr.Slider(2, MAX_SHOTS, value=2, step=1, label="Shots (few-shot)")
                            shot_strategy = gr.Radio(list(SHOT_STRATEGIES), value="random",
                                                     label="Shot choice")
                        shot_ids = gr.Textbox("", label="Fixed shot ids", max_lines=1,
                                              placeholder="train_0, train_1 (for 'fixed')")
                        with gr.Accordion("Decoding settings", open=False):
                            max_new_tokens = gr.Slider(8, core.MAX_NEW_TOKENS_LIMIT, value=100, step=1,
                                                       label="Max new tokens")
                            num_beams = gr.Slider(1, core.MAX_BEAMS_LIMIT, value=1, step=1,
                                                  label="Beams (1 = greedy, streams)")
                            do_sample = gr.Checkbox(False, label="Sample")
                            with gr.Row():
                                temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature")
                                top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
                            with gr.Row():
                                seed = gr.Number(0, precision=0, label="Seed")
                                max_prompt_tokens = gr.Slider(
                                    64, core.MAX_PROMPT_TOKENS_LIMIT, value=DEFAULT_MAX_PROMPT_TOKENS,
                                    step=16, label="Prompt token budget")
                        with gr.Row():
                            run_button = gr.Button("Run ▶", variant="primary", elem_id="run")
                            status_button = gr.Button("↻ Model status", size="sm")
                notes = gr.Markdown(label="Notes", elem_id="notes")
                cards = gr.HTML(label="Summaries", elem_id="cards")
                with gr.Row():
                    table = gr.Dataframe(label="ROUGE vs the reference (F-measure)", interactive=False,
                                         elem_id="rouge-table", scale=1)
                    chart = gr.Plot(label="ROUGE by model", elem_id="rouge-chart", scale=1, show_label=False)
                with gr.Accordion("Raw results (JSON)", open=False):
                    results = gr.JSON(label="results")
                with gr.Accordion("Model status", open=False):
                    status_table = gr.JSON(label="registry")

            with gr.Tab("Batch", id="batch"):
                gr.Markdown(f"Upload a **CSV or JSONL** file with a `dialogue` column (optional `summary`, "
                            f"`id`, `topic`): at most {core.MAX_UPLOAD_BYTES // 1024 // 1024} MB, "
                            f"{core.MAX_BATCH_ROWS} dialogues, {core.MAX_DIALOGUE_CHARS:,} characters each.")
                with gr.Row():
                    upload = gr.File(label="Dialogues file", file_types=list(core.UPLOAD_SUFFIXES),
                                     type="filepath", elem_id="upload")
                    with gr.Column():
                        batch_models = gr.CheckboxGroup(choices, value=defaults, label="Models")
                        with gr.Row():
                            batch_shot_mode = gr.Radio(list(core.SHOT_MODES), value="zero-shot", label="Prompt")
                            batch_n_shots = gr.Slider(2, MAX_SHOTS, value=2, step=1, label="Shots (few-shot)")
                        batch_max_new = gr.Slider(8, core.MAX_NEW_TOKENS_LIMIT, value=100, step=1,
                                                  label="Max new tokens")
                        batch_button = gr.Button("Summarize file ▶", variant="primary", elem_id="batch-run")
                batch_status = gr.Markdown(label="Status", elem_id="batch-status")
                batch_summary = gr.Dataframe(label="Per model", interactive=False, elem_id="batch-summary")
                batch_file = gr.File(label="Download results (CSV)", interactive=False, elem_id="batch-file")
                batch_rows = gr.Dataframe(label="Per dialogue", interactive=False, max_height=400,
                                          elem_id="batch-rows")

            with gr.Tab("Benchmark", id="benchmark"):
                bench_note = gr.Markdown(label="Source")
                bench_table = gr.Dataframe(label="Dataset-level ROUGE (F-measure)", interactive=False,
                                           elem_id="bench-table")
                bench_chart = gr.Plot(label="ROUGE by model", elem_id="bench-chart", show_label=False)
                bench_button = gr.Button("↻ Reload results", size="sm")

            with gr.Tab("API & limits", id="api"):
                gr.Markdown(API_HELP.format(max_chars=core.MAX_DIALOGUE_CHARS,
                                            max_mb=core.MAX_UPLOAD_BYTES // 1024 // 1024,
                                            max_rows=core.MAX_BATCH_ROWS, queue=queue_size))

        # ---- events ------------------------------------------------------------------------------
        light = dict(concurrency_limit=4, concurrency_id="light")
        example_outputs = [dialogue, reference, topic, index, example_info]
        random_button.click(load_example, [split, how_random, index], example_outputs,
                            api_name="load_example", **light)
        next_button.click(load_example, [split, how_next, index], example_outputs,
                          api_visibility="private", **light)
        index_button.click(load_example, [split, how_index, index], example_outputs,
                           api_visibility="private", **light)
        status_button.click(model_status, None, [models, status_table], api_name="model_status", **light)
        run_button.click(
            compare,
            [dialogue, reference, topic, models, shot_mode, n_shots, shot_strategy, shot_ids,
             max_new_tokens, num_beams, do_sample, temperature, top_p, seed, max_prompt_tokens],
            [cards, table, chart, results, notes], api_name="compare", concurrency_id="models")
        batch_button.click(batch, [upload, batch_models, batch_shot_mode, batch_n_shots, batch_max_new],
                           [batch_status, batch_summary, batch_rows, batch_file], api_name="batch",
                           concurrency_id="models")
        bench_button.click(benchmark, None, [bench_note, bench_table, bench_chart], api_name="benchmark",
                           **light)
        demo.load(page_load, None, [models, batch_models], api_visibility="private", **light)
        demo.load(benchmark, None, [bench_note, bench_table, bench_chart], api_visibility="private", **light)

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=queue_size)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme and CSS (Gradio 6 takes them at launch)."""
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("theme", gr.themes.Soft())
    kwargs.setdefault("show_error", False)
    kwargs.setdefault("max_file_size", core.MAX_UPLOAD_BYTES)  # uploads past it are refused up front
    return demo.launch(**kwargs)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        demo = build_app()
    except UserError as err:  # e.g. a broken registry file: one line, no traceback
        sys.exit(f"error: {err}")
    launch(demo)


if __name__ == "__main__":
    main()
