"""`/summarize`: one dialogue, one model, the summary as text. The simplest call for scripts and
for agents (it is the MCP tool `summarize` when the app runs with STUDIO_MCP=1, beside `compare`).
It is the compare path with one model: same models, limits and queue."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core
from summarizer.errors import UserError
from summarizer.request import DEFAULTS

from ..admission import MODEL_RUN, admitted
from ..common import shown_to_user


class SummarizeEndpoint:
    def __init__(self, studio: core.Studio):
        self.studio = studio

    def summarize(self, dialogue: str, model: str = "", max_new_tokens: float = DEFAULTS.max_new_tokens) -> str:
        """Summarize one dialogue with one model of this app and return the summary text.

        Args:
            dialogue: the conversation, one turn a line ("#Person1#: Hello ...").
            model: a model name from /model_status (e.g. "mini-instruct"); empty: the first
                pre-selected model.
            max_new_tokens: the longest summary, in tokens.
        Returns:
            The summary. An unknown model, an empty or oversized dialogue or a model that fails
            is refused with a one-line message.
        """
        with shown_to_user():
            name = (model if isinstance(model, str) else "").strip()
            name = name or next(iter(self.studio.models.default_models()), "")
            decoding = core.decoding_settings(max_new_tokens)
            view = self.studio.comparisons.compare_all(dialogue, "", [name], decoding=decoding)
            card = view.cards[0]
            if card.state != "done":
                raise UserError(f"{name}: {card.error or 'no summary'}")
            return card.text



def add_summarize_endpoint(studio: core.Studio) -> None:
    gr.api(admitted(SummarizeEndpoint(studio).summarize), api_name="summarize", **MODEL_RUN)
