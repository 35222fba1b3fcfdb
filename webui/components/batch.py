"""The Batch tab: summarize an uploaded CSV/JSONL (or the first dialogues of a DialogSum split) with
models x prompt templates; the per-dialogue matrix, and downloads (CSV, HTML matrix, JSON)."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core
from summarizer.prompts import MAX_SHOTS
from summarizer.request import DEFAULTS
from summarizer.studio.batch import DEFAULT_SPLIT_LIMIT, FILE_SOURCE, MAX_TEMPLATES
from summarizer.studio.batch_matrix import render_matrix
from summarizer.templates import BUILTIN, MAX_TEMPLATE_CHARS, check_template_text

from ..admission import MODEL_RUN, admitted
from ..common import LIGHT, shown_to_user

SOURCE_CHOICES = [("uploaded file", FILE_SOURCE), ("DialogSum validation", "validation"),
                  ("DialogSum test", "test")]


class BatchHandlers:
    def __init__(self, studio: core.Studio):
        self.studio = studio

    def batch(self, file: str | None = None, models: list[str] | None = None, shot_mode: str = "zero-shot",
              n_shots: float = 2, max_new_tokens: float = DEFAULTS.max_new_tokens, keep_as_pasted: bool = False,
              prompts: list[str] | None = None, written_prompt: str = "", split: str = FILE_SOURCE,
              limit: float = DEFAULT_SPLIT_LIMIT, progress=gr.Progress()):
        """Summaries (and ROUGE where there is a reference) for every dialogue of a CSV/JSONL file,
        or of the first dialogues of the server's DialogSum split, by every model in every prompt
        template. Every row names its `template`; the summary table has a row per model x template.

        Args:
            file: a .csv or .jsonl with a `dialogue` column (optional `summary`, `id`, `topic`);
                at most 2 MB and 200 dialogues. Ignored when `split` names a DialogSum split.
            models: registry names to run (see /model_status).
            shot_mode: "zero-shot", "one-shot" or "few-shot" (examples from DialogSum's train split).
            n_shots: examples in a few-shot prompt.
            max_new_tokens: the longest summary, in tokens.
            keep_as_pasted: send each dialogue as it is (no name -> #PersonN# mapping).
            prompts: one to three prompt templates: built-in names (see `python -m summarizer
                prompts`) or template texts with {dialogue} exactly once (at most 2,000
                characters); empty: each model's default template. A written template is named
                custom-<8 hex digits>.
            written_prompt: one more template text, as typed in the page's box.
            split: "file" (the uploaded `file`, the default), "validation" or "test" (the server's
                own DialogSum data, never a path).
            limit: how many dialogues to take from the start of the split (1 to 200).
        """
        with shown_to_user():
            shots = core.shot_settings(shot_mode, n_shots)
            decoding = core.decoding_settings(max_new_tokens)
            written = written_prompt if isinstance(written_prompt, str) and written_prompt.strip() else None
            if written is not None:
                check_template_text(written)  # the box holds a template, never a name
            chosen = [*(prompts or []), *([written] if written else [])]
            output = self.studio.batches.run(file, models or [], shots, decoding,
                                             progress=lambda fraction, desc: progress(fraction, desc=desc),
                                             speakers="keep" if keep_as_pasted else "auto",
                                             templates=chosen, split=split, limit=limit)
        summary, rows = core.batch_tables(output)
        return output.message, summary, rows, str(output.csv_path), output

    def matrix(self, output: core.BatchOutput | None, only_differ: bool = False):
        """The matrix for the page (all dialogues, or only where the summaries differ) and the
        run's HTML and JSON exports (always every dialogue)."""
        if output is None or output.matrix is None:
            return "", None, None
        matrix = output.matrix.only_differing() if only_differ else output.matrix
        # Result files older than an hour are cleaned away; the page keeps the matrix as long.
        files = [str(p) if p is not None and p.is_file() else None for p in (output.html_path, output.json_path)]
        return render_matrix(matrix), *files


def create_batch_tab(studio: core.Studio) -> dict:
    handlers = BatchHandlers(studio)
    gr.Markdown(f"Upload a **CSV or JSONL** file with a `dialogue` column (optional `summary`, "
                f"`id`, `topic`): at most {core.MAX_UPLOAD_BYTES // 1024 // 1024} MB, "
                f"{core.MAX_BATCH_ROWS} dialogues, {core.MAX_DIALOGUE_CHARS:,} characters each; "
                f"or take the first dialogues of the server's DialogSum split. Run them in up to "
                f"{MAX_TEMPLATES} prompt templates (docs/prompts.md).")
    with gr.Row():
        with gr.Column():
            source = gr.Radio(SOURCE_CHOICES, value=FILE_SOURCE, label="Dialogues from", elem_id="batch-source")
            upload = gr.File(label="Dialogues file", file_types=list(core.UPLOAD_SUFFIXES),
                             type="filepath", elem_id="upload")
            limit = gr.Slider(1, core.MAX_BATCH_ROWS, value=DEFAULT_SPLIT_LIMIT, step=1,
                              label="First N dialogues (from a DialogSum split)", elem_id="batch-limit")
        with gr.Column():
            models = gr.CheckboxGroup(studio.models.model_choices(), value=studio.models.default_models(),
                                     label="Models", elem_id="batch-models")
            prompts = gr.Dropdown(list(BUILTIN), value=[], multiselect=True, allow_custom_value=True,
                                  max_choices=MAX_TEMPLATES, label="Prompt templates (empty: each model's default)",
                                  elem_id="batch-templates")
            written_prompt = gr.Textbox("", label="Your own template (optional)", lines=3, max_length=MAX_TEMPLATE_CHARS,
                                     placeholder="Summarize this chat in one sentence:\n{dialogue}",
                                     info="{dialogue} exactly once, where the dialogue goes",
                                     elem_id="batch-template-text")
            with gr.Row():
                shot_mode = gr.Radio(list(core.SHOT_MODES), value="zero-shot", label="Prompt")
                n_shots = gr.Slider(2, MAX_SHOTS, value=2, step=1, label="Shots (few-shot)")
            max_new = gr.Slider(8, core.MAX_NEW_TOKENS_LIMIT, value=DEFAULTS.max_new_tokens, step=1, label="Max new tokens")
            keep_as_pasted = gr.Checkbox(False, label="Keep the text as pasted", elem_id="batch-keep-pasted")
            run_button = gr.Button("Summarize ▶", variant="primary", elem_id="batch-run")
    status = gr.Markdown(label="Status", elem_id="batch-status")
    summary = gr.Dataframe(label="Per model and template", interactive=False, elem_id="batch-summary")
    with gr.Row():
        file = gr.File(label="Download results (CSV)", interactive=False, elem_id="batch-file")
        html_file = gr.File(label="Download the matrix (HTML, opens offline)", interactive=False,
                            elem_id="batch-html")
        json_file = gr.File(label="Download the matrix (JSON)", interactive=False, elem_id="batch-json")
    only_differ = gr.Checkbox(False, label="Only where the summaries differ", elem_id="batch-differ")
    matrix = gr.HTML(elem_id="batch-matrix")
    rows = gr.Dataframe(label="Per dialogue", interactive=False, max_height=400, elem_id="batch-rows")
    kept = gr.State(None, time_to_live=3600)  # as long as the run's files are kept

    run_button.click(admitted(handlers.batch),
                     [upload, models, shot_mode, n_shots, max_new, keep_as_pasted, prompts, written_prompt, source,
                      limit],
                     [status, summary, rows, file, kept], api_name="batch", **MODEL_RUN
                     ).success(handlers.matrix, [kept, only_differ], [matrix, html_file, json_file],
                               api_visibility="private", **LIGHT)
    only_differ.change(handlers.matrix, [kept, only_differ], [matrix, html_file, json_file],
                       api_visibility="private", **LIGHT)
    return {"models": models}
