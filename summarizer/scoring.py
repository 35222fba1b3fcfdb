"""The one place a summary is scored: ROUGE against its references, the words it shares with
them, and what its dialogue does not support. The Compare cards, Batch rows, `evaluate` and the
leaderboard all take their numbers from `score`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from . import faithfulness, rouge


@dataclass
class Scores:
    rouge: dict[str, float] | None = None  # None: no reference to score against
    shared: set[str] = field(default_factory=set)  # words shared with the references
    faithfulness: faithfulness.Report | None = None  # None: no dialogue to check against

    @property
    def support(self) -> float | None:
        return self.faithfulness.support if self.faithfulness else None

    def unsupported(self) -> list[dict]:
        return [s.to_dict() for s in self.faithfulness.unsupported] if self.faithfulness else []


def score(summary: str, references: Sequence[str] = (), dialogue: str | None = None, parsed=None,
          use_stemmer: bool = False, shared: bool = True) -> Scores:
    """`summary` scored against `references` (ROUGE, best over several) and checked against
    `dialogue` (faithfulness; `parsed`: the chat as `summarizer.speakers.parse` already read it,
    so it is not parsed again)."""
    scores = Scores()
    references = [r for r in references if r]
    if references:
        scores.rouge = rouge.score(summary, references, use_stemmer)
        if shared:
            scores.shared = rouge.shared_words(summary, references)
    if dialogue:
        scores.faithfulness = faithfulness.check(dialogue, summary, parsed=parsed)
    return scores
