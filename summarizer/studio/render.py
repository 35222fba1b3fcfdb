"""Rendering for the web UI: HTML (every piece of user or model text escaped), tables and figures."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jinja2

from .. import rouge
from ..benchmarks_published import PUBLISHED_LABEL
from .batch import BatchOutput
from .benchmark import BenchmarkView
from ..votes.leaderboard import Leaderboard
from .compare import HIDDEN_ERROR, Card, CompareView

METRIC_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    auto_reload=False)  # read once: a running server never sees a half-edited template


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str | None = None  # None: plain; "shared": a word shared with the reference; else an unsupported span's kind


def _shared_segments(text: str, shared: set[str]) -> list[Segment]:
    """Words are matched as ROUGE tokenizes them (lower-case runs of letters and digits)."""
    segments, position = [], 0
    for match in re.finditer(r"[A-Za-z0-9]+", text):
        word = match.group(0)
        if word.lower() in shared:
            segments += [Segment(text[position:match.start()]), Segment(word, "shared")]
            position = match.end()
    return [*segments, Segment(text[position:])]


def summary_segments(text: str, shared: set[str], unsupported: Sequence = ()) -> list[Segment]:
    """A summary cut into plain text, ROUGE's shared words, and the spans the dialogue does not
    support (faithfulness.Span, offsets into `text`); the template escapes each piece."""
    segments, position = [], 0
    for span in sorted(unsupported, key=lambda s: s.start):
        if span.start < position or span.end > len(text):
            continue  # overlapping or stale: never cut the text
        segments += _shared_segments(text[position:span.start], shared)
        segments.append(Segment(text[span.start:span.end], span.kind or "word"))
        position = span.end
    segments += _shared_segments(text[position:], shared)
    return [s for s in segments if s.text]


def _card_segments(card: Card, hidden: bool) -> list[Segment]:
    if hidden:
        return [Segment(card.text)] if card.text else []
    spans = card.faithfulness.unsupported if card.faithfulness else ()
    return summary_segments(card.text, card.shared if card.scores is not None else set(), spans)


_STATE_LABELS = {"waiting": "waiting", "running": "generating…", "done": "done", "error": "could not run"}


def render_cards(view: CompareView) -> str:
    """The comparison as side-by-side cards (templates/cards.html, autoescaped).

    Before a blind comparison's vote a card shows its letter, state and summary only: no model
    name or kind, no scores or highlights, no timings or token counts, no prompt, no error reason.
    """
    if not view.cards:
        return ""
    hidden = not view.revealed
    return _TEMPLATES.get_template("cards.html").render(
        cards=view.cards, hidden=hidden, templates=view.templates, picked=view.ballot.winner_label if view.ballot is not None else None,
        segments=lambda card: _card_segments(card, hidden), speaker_line=speaker_line,
        state_labels=_STATE_LABELS, hidden_error=HIDDEN_ERROR, metrics=rouge.METRICS, metric_labels=METRIC_LABELS)


def speaker_line(card: Card) -> str:
    """"Speakers: Amanda → #Person1#, Ben → #Person2#" (the tags this model read), the names
    alone for a model that reads names, or "" (kept as pasted, or no speakers found)."""
    result = card.result
    if result is None or not result.speakers:
        return ""
    if result.speaker_mapping:
        return "Speakers: " + ", ".join(f"{n} → {t}" for n, t in result.speaker_mapping.items())
    return "Speakers: " + ", ".join(result.speakers)


def render_notes(view: CompareView) -> str:
    """Markdown for the notes above the cards (escaped: it may quote user text)."""
    lines = [f"**Note:** {html.escape(n)}" for n in view.notes]
    name = (lambda c: c.model) if view.revealed else (lambda c: c.label)
    if view.done:
        failed = [name(c) for c in view.cards if c.state == "error"]
        ok = len(view.cards) - len(failed)
        lines.insert(0, f"✓ {ok} of {len(view.cards)} model(s) finished"
                        + (f"; could not run: {html.escape(', '.join(failed))}" if failed else "."))
    else:
        running = [name(c) for c in view.cards if c.state == "running"]
        lines.insert(0, "Running " + html.escape(", ".join(running)) + "…" if running else "Starting…")
    return "\n\n".join(lines)


def rouge_table(view: CompareView):
    """ROUGE per model as a DataFrame (empty, with the same columns, without a reference or
    before a blind comparison's vote)."""
    import pandas as pd

    columns = ["model", *(METRIC_LABELS[m] for m in rouge.METRICS), "support", "latency (s)"]
    rows = []
    for card in view.cards if view.revealed else []:
        if card.scores is None:
            continue
        rows.append([card.model, *(round(card.scores[m], 4) for m in rouge.METRICS),
                     _r(card.faithfulness.support if card.faithfulness else None, 3),
                     round(card.result.seconds, 3)])
    return pd.DataFrame(rows, columns=columns)


def rouge_figure(rows: Sequence[dict], title: str, label_key: str = "model", hatch_key: str | None = None):
    """Horizontal grouped bars: one group per row (model, top to bottom in row order), one bar per
    ROUGE metric and one for faithfulness support where a row has it. None when no rows.

    Horizontal so that ten long labels ("mini-instruct (0-shot, paper's scoring, ours)") stay
    readable: the figure grows in height with the rows instead of squeezing the labels together."""
    rows = [r for r in rows if any(r.get(m) is not None for m in rouge.METRICS)]
    if not rows:
        return None
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    metrics = [*rouge.METRICS, *(["support"] if any(r.get("support") is not None for r in rows) else [])]
    labels = {**METRIC_LABELS, "support": "support (faithfulness)"}
    colors = {"rouge1": "#4C72B0", "rouge2": "#55A868", "rougeL": "#C44E52", "rougeLsum": "#8172B2",
              "support": "#DD8452"}
    bar = 0.8 / len(metrics)
    figure = Figure(figsize=(9.0, max(3.2, 0.14 * len(metrics) * len(rows) + 1.4)), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for j, metric in enumerate(metrics):
        ys = [i + (j - (len(metrics) - 1) / 2) * bar for i in range(len(rows))]
        widths = [r.get(metric) or 0.0 for r in rows]
        hatches = ["//" if hatch_key and r.get(hatch_key) else "" for r in rows]
        bars = axes.barh(ys, widths, height=bar, color=colors[metric], label=labels[metric])
        for rectangle, hatch in zip(bars, hatches):
            rectangle.set_hatch(hatch)
            rectangle.set_edgecolor("white" if hatch else colors[metric])
    axes.set_yticks(range(len(rows)), [str(r[label_key]).replace("\n", " ") for r in rows], fontsize=9)
    axes.invert_yaxis()  # the first row on top, as in the table
    axes.set_xlabel("ROUGE F-measure; support in [0, 1]" if "support" in metrics else "F-measure")
    top = max(r.get(m) or 0.0 for r in rows for m in metrics)
    axes.set_xlim(0, min(1.0, max(0.1, top * 1.15)))
    axes.set_title(title, fontsize=11)
    handles = [Patch(facecolor=colors[m], label=labels[m]) for m in metrics]
    if hatch_key and any(r.get(hatch_key) for r in rows):
        handles.append(Patch(facecolor="#999999", hatch="//", edgecolor="white", label="published"))
    figure.legend(handles=handles, ncols=len(handles), fontsize=8, loc="outside lower center", frameon=False)
    axes.grid(axis="x", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def compare_figure(view: CompareView):
    if not view.revealed:
        return None
    rows = [{"model": c.model, **c.scores, "support": c.faithfulness.support if c.faithfulness else None}
            for c in view.cards if c.scores is not None]
    return rouge_figure(rows, "ROUGE vs the reference, by model")


def benchmark_table(view: BenchmarkView):
    import pandas as pd

    columns = ["source", "model", "template", "setting", *(METRIC_LABELS[m] for m in rouge.METRICS), "support",
               "unsupported name/number", "n"]
    rows = [[r["source"], r["model"], r.get("template"), r["description"],
             *(None if r.get(m) is None else round(r[m], 4) for m in rouge.METRICS),
             _r(r.get("support"), 3), _r(r.get("unsupported_particulars"), 3), r.get("n")]
            for r in view.rows]
    return pd.DataFrame(rows, columns=columns)


def benchmark_figure(view: BenchmarkView):
    rows = []
    for r in view.rows:
        published = r["source"] == PUBLISHED_LABEL
        label = (f"{r['model']} (course, published)" if published
                 else f"{r['model']} ({r.get('template') or 'experiment'}, {r['description']}, ours)")
        rows.append({**r, "label": label, "published": published})
    return rouge_figure(rows, "Dataset-level ROUGE and support (hatched: course lab, published)", label_key="label",
                        hatch_key="published")


def batch_tables(output: BatchOutput):
    """The per model x template summary and the per-summary rows (each with its template)."""
    import pandas as pd

    return pd.DataFrame(output.summary), pd.DataFrame(output.rows)


# --- leaderboard ---------------------------------------------------------------------------------


def leaderboard_table(board: Leaderboard):
    """Per model: votes, wins, win rate, strength with its 95% interval, mean ROUGE beside it."""
    import pandas as pd

    columns = ["rank", "model", "votes", "wins", "ties", "all bad", "win rate", "strength", "95% low",
               "95% high", "mean ROUGE-1", "mean ROUGE-L", "scored", "mean support"]
    rows = [[i + 1 if s.strength is not None else None, s.model, s.votes, s.wins, s.ties, s.all_bad,
             _r(s.win_rate), _r(s.strength), _r(s.low), _r(s.high), _r(s.mean_rouge1), _r(s.mean_rougeL), s.scored,
             _r(s.mean_support, 3)]
            for i, s in enumerate(board.standings)]
    return pd.DataFrame(rows, columns=columns)


def leaderboard_note(board: Leaderboard) -> str:
    """Markdown: what the board counts, and where ROUGE and people agree."""
    filters = [] if board.shot_mode == "all" else [board.shot_mode]
    if board.blind_only:
        filters.append("blind votes only")
    lines = [f"**{board.votes} vote(s)**{' (' + ', '.join(filters) + ')' if filters else ''}: "
             f"{board.best} best-of picks, {board.ties} “all equally good”, {board.all_bad} “all bad”."]
    if not board.votes:
        lines.append("No votes yet: run a comparison on the Compare tab and pick the best summary.")
        return "\n\n".join(lines)
    if board.fit_error:
        lines.append(f"Note: {html.escape(board.fit_error)}.")
    lines.append("Strength: Bradley-Terry / Luce θ fitted to the best-of picks (`choix.ilsr_top1`), "
                 "log scale, mean 0; e^(θa−θb) is the odds that a beats b. 95% interval: bootstrap "
                 "over votes. Ties and “all bad” count as votes, not wins.")
    agreement = board.agreement
    first = agreement.get("rouge1", {})
    if first.get("votes"):
        parts = [f"{METRIC_LABELS[m]} {agreement[m]['agree']}/{agreement[m]['votes']} "
                 f"({agreement[m]['rate']:.0%}; a random pick: {agreement[m]['chance']:.0%})"
                 for m in ("rouge1", "rougeL")]
        lines.append("**ROUGE vs people**: on the best-of votes with a reference, the people's pick also "
                     "had the highest " + " · ".join(parts) + ".")
        tau = agreement.get("rank_correlation", {}).get("kendall_tau")
        if tau is not None:
            lines.append(f"Order of the models by strength vs by mean ROUGE-L: Kendall's τ = {tau:.2f} "
                         f"over {agreement['rank_correlation']['models']} models (1: same order, −1: reversed).")
    else:
        lines.append("**ROUGE vs people**: no best-of vote on a comparison with a reference yet.")
    support = agreement.get("support", {})
    if support.get("votes"):
        lines.append(f"**Support vs people**: on {support['votes']} best-of vote(s), the people's pick was also "
                     f"the best-supported summary (faithfulness support) {support['agree']}/{support['votes']} "
                     f"({support['rate']:.0%}; a random pick: {support['chance']:.0%}).")
    return "\n\n".join(lines)


def leaderboard_figure(board: Leaderboard):
    """Strength with its 95% interval per model (strongest on top). None before any best-of pick."""
    rows = [s for s in board.standings if s.strength is not None]
    if not rows:
        return None
    from matplotlib.figure import Figure

    rows = rows[::-1]
    figure = Figure(figsize=(7.5, 0.55 * len(rows) + 1.4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    ys = range(len(rows))
    strengths = [s.strength for s in rows]
    errors = [[s.strength - (s.low if s.low is not None else s.strength) for s in rows],
              [(s.high if s.high is not None else s.strength) - s.strength for s in rows]]
    axes.barh(ys, strengths, color="#4C72B0", height=0.55)
    axes.errorbar(strengths, ys, xerr=errors, fmt="none", ecolor="#222", capsize=4, linewidth=1)
    axes.set_yticks(list(ys), [f"{s.model} ({s.wins}/{s.votes})" for s in rows], fontsize=9)
    axes.axvline(0, color="#888", linewidth=0.8)
    axes.set_xlabel("strength θ (log scale, mean 0) with 95% bootstrap interval")
    axes.set_title("People's choice: Bradley-Terry / Luce strength (wins/votes)", fontsize=11)
    axes.grid(axis="x", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def _r(value, digits: int = 4):
    return None if value is None else round(value, digits)
