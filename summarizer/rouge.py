"""ROUGE F-measures with the `rouge_score` package (what `evaluate`'s "rouge" wraps).

Scores are fractions (0.4216, not 42.16). Defaults match `evaluate.load("rouge")`: no stemming, the
package's own tokenizer (lower-case, letters and digits only), rougeLsum splitting on newlines.
With several references a prediction gets, per metric, the best F-measure over its references
(`rouge_score`'s `score_multi`, which is also what `evaluate` does for a list of references).
A dataset score is the plain mean of per-example scores (`evaluate` reports the middle of a
bootstrap over the same means; the two agree to about three decimals).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

from .errors import UserError

METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
REFERENCE_CHOICES = ("all", "summary1", "summary2", "summary3")


@lru_cache(maxsize=2)
def _scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(list(METRICS), use_stemmer=use_stemmer)


def select_references(references: Sequence[str], reference: str = "all") -> list[str]:
    """`all` keeps every reference; `summaryN` keeps the N-th (1-based), as the release names them."""
    if reference == "all":
        return list(references)
    if reference not in REFERENCE_CHOICES:
        raise UserError(f"unknown reference {reference!r}; choose one of {', '.join(REFERENCE_CHOICES)}")
    index = int(reference[-1]) - 1
    if index >= len(references):
        raise UserError(f"{reference} asked for, but this example has {len(references)} reference(s)")
    return [references[index]]


def score(prediction: str, references: Sequence[str], use_stemmer: bool = False) -> dict[str, float]:
    """F-measures of one prediction against its reference(s)."""
    references = [r for r in references if r is not None]
    if not references:
        raise UserError("no reference summary to score against")
    scorer = _scorer(use_stemmer)
    if len(references) == 1:
        result = scorer.score(references[0], prediction)
    else:
        result = scorer.score_multi(references, prediction)
    return {m: result[m].fmeasure for m in METRICS}


def aggregate(scores: Iterable[dict[str, float]]) -> dict[str, float]:
    """Mean F-measure per metric, plus n."""
    scores = list(scores)
    if not scores:
        return {**{m: 0.0 for m in METRICS}, "n": 0}
    return {**{m: sum(s[m] for s in scores) / len(scores) for m in METRICS}, "n": len(scores)}


def shared_words(prediction: str, references: Sequence[str]) -> set[str]:
    """Lower-cased tokens of `prediction` that appear in a reference (ROUGE-1's matches)."""
    from rouge_score import tokenize
    reference_tokens = set()
    for reference in references:
        reference_tokens.update(tokenize.tokenize(reference, None))
    return {t for t in tokenize.tokenize(prediction, None) if t in reference_tokens}
