"""Checks that a ROUGE figure comes from a model that reads its input.

A small model trained from scratch first learns one generic DialogSum-style sentence for every
dialogue, and that alone scores about 0.26 ROUGE-1. Three numbers tell such a model apart:
- `distinct`: the share of distinct summaries (one sentence for everything gives ~0);
- `repetitive`: the share of summaries in which a word 3-gram occurs three times or more
  (degenerate loops);
- `rouge1_shuffled`: ROUGE-1 against another dialogue's reference (each summary scored against
  the next example's references). A model that reads its input scores clearly higher against its
  own reference than against a stranger's; an input-blind one scores the same.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from . import rouge

_WORD = re.compile(r"\w+")


def distinct_share(summaries: Sequence[str]) -> float:
    normalized = [" ".join(_WORD.findall(s.lower())) for s in summaries]
    return len(set(normalized)) / len(normalized) if normalized else 0.0


def is_repetitive(summary: str, n: int = 3, times: int = 3) -> bool:
    words = _WORD.findall(summary.lower())
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return any(count >= times for count in grams.values())


def repetitive_share(summaries: Sequence[str]) -> float:
    return sum(map(is_repetitive, summaries)) / len(summaries) if summaries else 0.0


def shuffled_rouge1(summaries: Sequence[str], references: Sequence[Sequence[str]],
                    use_stemmer: bool = False) -> float:
    """Mean ROUGE-1 of summary i against the references of example i+1 (cyclically)."""
    if len(summaries) < 2:
        return 0.0
    shifted = list(references[1:]) + [references[0]]
    return sum(rouge.score(s, r, use_stemmer)["rouge1"]
               for s, r in zip(summaries, shifted)) / len(summaries)


def diagnose(summaries: Sequence[str], references: Sequence[Sequence[str]],
             use_stemmer: bool = False) -> dict[str, float]:
    return {"distinct": distinct_share(summaries), "repetitive": repetitive_share(summaries),
            "rouge1_shuffled": shuffled_rouge1(summaries, references, use_stemmer)}
