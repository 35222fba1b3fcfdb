"""The leaderboard: people's votes as Bradley-Terry / Luce strengths, beside ROUGE.

A vote for the best of N summaries is a top-1 choice among N models. Under Luce's choice axiom
(Bradley-Terry when N = 2) model i is picked with probability exp(θ_i) / Σ_j exp(θ_j) over the
models shown; `choix.ilsr_top1` fits θ by maximum likelihood (iterative Luce spectral ranking)
with a small regularisation, ALPHA, so that a model that always wins or always loses gets a
finite strength. θ is on a log scale with mean 0 over the fitted models: exp(θ_a - θ_b) is the
odds that a beats b head to head. 95% intervals are percentiles of the fit on bootstrap
resamples of the votes (fixed seed, so the CLI and the page show the same numbers).

"All equally good" and "all bad" are counted as votes but are not choices: they add no win and
do not enter the fit.

ROUGE vs people: on votes whose comparison had a reference, how often the people's pick also
had the highest ROUGE-1 (ROUGE-L) among the summaries shown (a tie for the highest counts), next
to the rate a random pick would reach. Support vs people: the same for the faithfulness support
(summarizer.faithfulness) of the summaries, on every best-of vote (it needs no reference). Each
card's support is stored when the comparison is; a card recorded before that has it recomputed
from its summary when the voter shared the dialogue, else it is left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from .. import scoring
from ..errors import UserError
from .store import Ballot

ALPHA = 0.1  # choix's regularisation: pseudo-comparisons between every pair of models
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 0
SHOT_FILTERS = ("all", "zero-shot", "one-shot", "few-shot")
AGREEMENT_METRICS = ("rouge1", "rougeL")
_TOLERANCE = 1e-9


@dataclass
class Standing:
    """One model's row."""
    model: str
    votes: int = 0  # votes on comparisons where it had a summary
    wins: int = 0  # picked as the best
    ties: int = 0
    all_bad: int = 0
    win_rate: float | None = None
    strength: float | None = None  # θ (log scale, mean 0); None if it was never in a best-of choice
    low: float | None = None  # 95% bootstrap interval of θ
    high: float | None = None
    mean_rouge1: float | None = None  # over its summaries in voted comparisons with a reference
    mean_rougeL: float | None = None
    scored: int = 0
    mean_support: float | None = None  # over its summaries in voted comparisons (no reference needed)


@dataclass
class Leaderboard:
    shot_mode: str
    blind_only: bool
    votes: int
    best: int
    ties: int
    all_bad: int
    standings: list[Standing]
    agreement: dict = field(default_factory=dict)
    fit_error: str = ""  # why there are no strengths, when the fit failed

    def to_dict(self) -> dict:
        return {"filters": {"shot_mode": self.shot_mode, "blind_only": self.blind_only},
                "votes": self.votes, "best": self.best, "ties": self.ties, "all_bad": self.all_bad,
                "model": {"fit": "choix.ilsr_top1", "alpha": ALPHA, "bootstrap_rounds": BOOTSTRAP_ROUNDS,
                          "bootstrap_seed": BOOTSTRAP_SEED, "interval": 0.95},
                "standings": [_rounded(asdict(s)) for s in self.standings],
                "agreement": _rounded(self.agreement), "fit_error": self.fit_error}


def select(ballots: Sequence[Ballot], shot_mode: str = "all", blind_only: bool = False) -> list[Ballot]:
    if shot_mode not in SHOT_FILTERS:
        raise UserError(f"unknown shot filter {shot_mode!r}; choose one of {', '.join(SHOT_FILTERS)}")
    return [b for b in ballots
            if (shot_mode == "all" or b.comparison.shot_mode == shot_mode)
            and (b.comparison.blind or not blind_only)]


def top1_data(ballots: Sequence[Ballot], models: Sequence[str]) -> list[tuple[int, list[int]]]:
    """choix's top-1 data: (winner, [the other models shown]) per best-of vote, as indices."""
    index = {name: i for i, name in enumerate(models)}
    data = []
    for ballot in ballots:
        if ballot.verdict != "best":
            continue
        winner = ballot.winner
        losers = [index[c.model] for c in ballot.candidates if c.model != winner]
        if losers:
            data.append((index[winner], losers))
    return data


def fit_strengths(n_items: int, data: Sequence[tuple[int, list[int]]]) -> np.ndarray:
    import choix
    # More iterations than choix's default 100: a lopsided board converges slowly, and a fit that
    # converges within 100 stops there, so it is the same fit.
    return choix.ilsr_top1(n_items, data, alpha=ALPHA, max_iter=1000)


def bootstrap_intervals(n_items: int, data: Sequence[tuple[int, list[int]]],
                        rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED):
    """(low, high) arrays: the 2.5th and 97.5th percentiles of θ over resampled vote sets."""
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(rounds):
        sample = [data[i] for i in rng.integers(0, len(data), len(data))]
        try:
            fits.append(fit_strengths(n_items, sample))
        except RuntimeError:  # ilsr did not converge on this resample: leave it out
            continue
    if not fits:
        return None, None
    fits = np.array(fits)
    return np.percentile(fits, 2.5, axis=0), np.percentile(fits, 97.5, axis=0)


def rouge_agreement(ballots: Sequence[Ballot]) -> dict:
    """How often the people's pick had the highest ROUGE among the summaries shown."""
    result = {}
    scored = [b for b in ballots if b.verdict == "best" and b.comparison.has_reference
              and all(c.rouge is not None for c in b.candidates)]
    for metric in AGREEMENT_METRICS:
        agree, chance = 0, 0.0
        for ballot in scored:
            values = {c.label: c.rouge[metric] for c in ballot.candidates}
            top = max(values.values())
            leaders = [label for label, value in values.items() if value >= top - _TOLERANCE]
            agree += ballot.winner_label in leaders
            chance += len(leaders) / len(values)
        result[metric] = {"votes": len(scored), "agree": agree,
                          "rate": agree / len(scored) if scored else None,
                          "chance": chance / len(scored) if scored else None}
    return result


def card_support(ballot: Ballot, card) -> float | None:
    """The card's stored support, or (older records) recomputed where the dialogue was shared."""
    if card.support is not None:
        return card.support
    if ballot.dialogue and card.summary is not None:
        return scoring.score(card.summary, dialogue=ballot.dialogue).support
    return None


def support_agreement(ballots: Sequence[Ballot]) -> dict:
    """How often the people's pick was also the best-supported summary among those shown."""
    agree, chance, votes = 0, 0.0, 0
    for ballot in ballots:
        if ballot.verdict != "best":
            continue
        values = {c.label: card_support(ballot, c) for c in ballot.candidates}
        if not values or any(v is None for v in values.values()):
            continue
        top = max(values.values())
        leaders = [label for label, value in values.items() if value >= top - _TOLERANCE]
        votes += 1
        agree += ballot.winner_label in leaders
        chance += len(leaders) / len(values)
    return {"votes": votes, "agree": agree, "rate": agree / votes if votes else None,
            "chance": chance / votes if votes else None}


def compute(ballots: Sequence[Ballot], shot_mode: str = "all", blind_only: bool = False) -> Leaderboard:
    chosen = select(ballots, shot_mode, blind_only)
    standings: dict[str, Standing] = {}
    rouge_sums: dict[str, list[tuple[float, float]]] = {}
    supports: dict[str, list[float]] = {}
    for ballot in chosen:
        for card in ballot.candidates:
            row = standings.setdefault(card.model, Standing(card.model))
            row.votes += 1
            row.wins += ballot.verdict == "best" and card.label == ballot.winner_label
            row.ties += ballot.verdict == "tie"
            row.all_bad += ballot.verdict == "bad"
            if ballot.comparison.has_reference and card.rouge is not None:
                rouge_sums.setdefault(card.model, []).append((card.rouge["rouge1"], card.rouge["rougeL"]))
            support = card_support(ballot, card)
            if support is not None:
                supports.setdefault(card.model, []).append(support)
    for row in standings.values():
        row.win_rate = row.wins / row.votes if row.votes else None
        if supports.get(row.model):
            row.mean_support = sum(supports[row.model]) / len(supports[row.model])
        scores = rouge_sums.get(row.model, [])
        if scores:
            row.scored = len(scores)
            row.mean_rouge1 = sum(s[0] for s in scores) / len(scores)
            row.mean_rougeL = sum(s[1] for s in scores) / len(scores)

    best = [b for b in chosen if b.verdict == "best"]
    fitted = sorted({c.model for b in best for c in b.candidates})
    data = top1_data(best, fitted)
    fit_error = ""
    if data:
        try:
            strengths = fit_strengths(len(fitted), data)
        except RuntimeError as err:  # ilsr did not converge: counts still shown, strengths not
            strengths, fit_error = None, f"the strengths could not be fitted ({err})"
        if strengths is not None:
            low, high = bootstrap_intervals(len(fitted), data)
            for i, name in enumerate(fitted):
                row = standings[name]
                row.strength = float(strengths[i])
                if low is not None:
                    row.low, row.high = float(low[i]), float(high[i])

    order = sorted(standings.values(), key=lambda r: (r.strength is None, -(r.strength or 0.0),
                                                     -(r.win_rate or 0.0), r.model))
    agreement = rouge_agreement(chosen)
    agreement["support"] = support_agreement(chosen)
    agreement["rank_correlation"] = _rank_correlation(order)
    return Leaderboard(shot_mode, blind_only, votes=len(chosen), best=len(best),
                       ties=sum(b.verdict == "tie" for b in chosen),
                       all_bad=sum(b.verdict == "bad" for b in chosen), standings=order, agreement=agreement,
                       fit_error=fit_error)


def _rank_correlation(standings: Sequence[Standing]) -> dict:
    """Kendall's tau between the people's strengths and mean ROUGE-L, over models with both."""
    both = [s for s in standings if s.strength is not None and s.mean_rougeL is not None]
    if len(both) < 3:
        return {"models": len(both), "kendall_tau": None}
    from scipy.stats import kendalltau
    tau = kendalltau([s.strength for s in both], [s.mean_rougeL for s in both]).statistic
    return {"models": len(both), "kendall_tau": None if tau != tau else float(tau)}  # NaN: constant


def _rounded(value, digits: int = 4):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value
