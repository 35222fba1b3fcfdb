"""From a request to scored summaries: the one path the app, the CLI and training share.

`run` summarizes every dialogue of a `SummaryRequest` with every model (`generation.summarize`:
mixed batches, shared backbones, speakers mapped and restored) and scores each summary once
(`scoring.score`: ROUGE where there are references, faithfulness against the dialogue as pasted,
reusing the chat's parse from generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from . import scoring
from .data import Example
from .generation import PartialCallback, Result, TemplatePartialCallback, summarize_request
from .registry import Registry
from .request import SummaryRequest


@dataclass
class Scored:
    result: Result
    example: Example
    scores: scoring.Scores | None  # None when the model gave no summary

    @property
    def ok(self) -> bool:
        return self.result.summary is not None and not self.result.error


def run(registry: Registry, request: SummaryRequest, shot_pool: Sequence[Example] | None = None,
        on_partial: PartialCallback | None = None, progress: bool = False, processes=None,
        use_stemmer: bool = False, shared_words: bool = True,
        on_template_partial: TemplatePartialCallback | None = None) -> list[Scored]:
    """Every example of `request` summarized by every model in every template, and scored."""
    results = summarize_request(registry, request, shot_pool, progress, on_partial, processes,
                                on_template_partial)
    by_id = {e.id: e for e in request.examples}
    return [score(result, by_id[result.example_id], use_stemmer, shared_words) for result in results]


def score(result: Result, example: Example, use_stemmer: bool = False, shared_words: bool = True) -> Scored:
    """One result scored against its example (references and dialogue as the user gave them)."""
    if result.summary is None or result.error:
        return Scored(result, example, None)
    scores = scoring.score(result.summary, example.references, example.dialogue,
                           parsed=getattr(result, "parsed", None), use_stemmer=use_stemmer,
                           shared=shared_words)
    return Scored(result, example, scores)
