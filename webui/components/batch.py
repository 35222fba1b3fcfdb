"""The Batch tab: upload a CSV/JSONL of dialogues, summarize every row, download a CSV."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core
from summarizer.prompts import MAX_SHOTS
from summarizer.request import DEFAULTS

from ..admission import MODEL_RUN, admitted
from ..common import shown_to_user


class BatchHandlers:
    def __init__(self, studio: core.Studio):
        self.studio = studio

    def batch(self, file: str | None, models: list[str] | None = None, shot_mode: str = "zero-shot",
              n_shots: float = 2, max_new_tokens: float = DEFAULTS.max_new_tokens, keep_as_pasted: bool = False,
              progress=gr.Progress()):
        """Summaries (and ROUGE where there is a reference) for every row of a CSV/JSONL file.
        `keep_as_pasted` sends each dialogue as it is (no name -> #PersonN# mapping)."""
        with shown_to_user():
            shots = core.shot_settings(shot_mode, n_shots)
            decoding = core.decoding_settings(max_new_tokens)
            output = self.studio.batches.run(file, models or [], shots, decoding,
                                      progress=lambda fraction, desc: progress(fraction, desc=desc),
                                      speakers="keep" if keep_as_pasted else "auto")
        summary, rows = core.batch_tables(output)
        return output.message, summary, rows, str(output.csv_path)



def create_batch_tab(studio: core.Studio) -> dict:
    handlers = BatchHandlers(studio)
    gr.Markdown(f"Upload a **CSV or JSONL** file with a `dialogue` column (optional `summary`, "
                f"`id`, `topic`): at most {core.MAX_UPLOAD_BYTES // 1024 // 1024} MB, "
                f"{core.MAX_BATCH_ROWS} dialogues, {core.MAX_DIALOGUE_CHARS:,} characters each.")
    with gr.Row():
        upload = gr.File(label="Dialogues file", file_types=list(core.UPLOAD_SUFFIXES),
                         type="filepath", elem_id="upload")
        with gr.Column():
            models = gr.CheckboxGroup(studio.models.model_choices(), value=studio.models.default_models(),
                                     label="Models")
            with gr.Row():
                shot_mode = gr.Radio(list(core.SHOT_MODES), value="zero-shot", label="Prompt")
                n_shots = gr.Slider(2, MAX_SHOTS, value=2, step=1, label="Shots (few-shot)")
            max_new = gr.Slider(8, core.MAX_NEW_TOKENS_LIMIT, value=DEFAULTS.max_new_tokens, step=1, label="Max new tokens")
            keep_as_pasted = gr.Checkbox(False, label="Keep the text as pasted", elem_id="batch-keep-pasted")
            run_button = gr.Button("Summarize file ▶", variant="primary", elem_id="batch-run")
    status = gr.Markdown(label="Status", elem_id="batch-status")
    summary = gr.Dataframe(label="Per model", interactive=False, elem_id="batch-summary")
    file = gr.File(label="Download results (CSV)", interactive=False, elem_id="batch-file")
    rows = gr.Dataframe(label="Per dialogue", interactive=False, max_height=400, elem_id="batch-rows")

    run_button.click(admitted(handlers.batch), [upload, models, shot_mode, n_shots, max_new, keep_as_pasted],
                     [status, summary, rows, file],
                     api_name="batch", **MODEL_RUN)
    return {"models": models}
