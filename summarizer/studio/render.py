"""Rendering for the web UI: HTML (every piece of user or model text escaped), tables and figures."""

from __future__ import annotations

import html
import re
from typing import Sequence

from .. import rouge
from ..benchmarks_published import PUBLISHED_LABEL
from .batch import BatchOutput
from .benchmark import BenchmarkView
from .compare import CompareView

METRIC_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}


def highlight_shared(text: str, shared: set[str]) -> str:
    """Escaped HTML of `text` with the words it shares with the reference in <mark>.

    Words are matched as ROUGE tokenizes them (lower-case runs of letters and digits).
    """
    parts, position = [], 0
    for match in re.finditer(r"[A-Za-z0-9]+", text):
        parts.append(html.escape(text[position:match.start()]))
        word = match.group(0)
        escaped = html.escape(word)
        parts.append(f"<mark>{escaped}</mark>" if word.lower() in shared else escaped)
        position = match.end()
    parts.append(html.escape(text[position:]))
    return "".join(parts)


_STATE_LABELS = {"waiting": "waiting", "running": "generating…", "done": "done", "error": "could not run"}


def render_cards(view: CompareView) -> str:
    """The comparison as side-by-side cards; every piece of text in it is escaped."""
    if not view.cards:
        return ""
    cards = []
    for card in view.cards:
        e = html.escape
        body = []
        header = (f'<div class="ds-card-head"><span class="ds-model">{e(card.model)}</span>'
                  f'<span class="ds-kind">{e(card.kind)}</span>'
                  f'<span class="ds-state ds-{e(card.state)}">{e(_STATE_LABELS.get(card.state, card.state))}</span></div>')
        if card.state == "error":
            body.append(f'<div class="ds-error" role="alert">⚠ {e(card.error or "unknown error")}</div>')
        elif card.state == "done":
            if card.scores is not None:
                summary_html = highlight_shared(card.text, card.shared)
            else:
                summary_html = e(card.text)
            body.append(f'<div class="ds-summary">{summary_html or "<em>(empty summary)</em>"}</div>')
        else:
            placeholder = "<em>waiting for its turn…</em>" if card.state == "waiting" else "<em>loading…</em>"
            body.append(f'<div class="ds-summary ds-streaming">{e(card.text) if card.text else placeholder}</div>')
        result = card.result
        if result is not None and not result.error:
            stats = [f"latency {result.seconds:.2f} s"]
            if card.wall_seconds - result.seconds > 0.5:
                stats.append(f"{card.wall_seconds:.1f} s with loading")
            unit = "words" if card.kind == "extractive" else "tokens"
            stats.append(f"{result.input_tokens} {unit} in · {result.output_tokens} out")
            body.append(f'<div class="ds-stats">{e(" · ".join(stats))}</div>')
            if card.scores is not None:
                cells = "".join(f"<span>{e(METRIC_LABELS[m])} <b>{card.scores[m]:.3f}</b></span>"
                                for m in rouge.METRICS)
                body.append(f'<div class="ds-rouge">{cells}</div>')
                if card.shared:
                    body.append('<div class="ds-note">highlighted: words shared with the reference</div>')
            else:
                body.append('<div class="ds-note">ROUGE: not computed (no reference)</div>')
            prompt = result.prompt
            if prompt is not None:
                for notice in prompt.notices:
                    body.append(f'<div class="ds-notice">⚠ {e(notice)}</div>')
                shots = f", shots: {', '.join(prompt.shot_ids)}" if prompt.shot_ids else ", zero-shot"
                body.append(f'<details class="ds-prompt"><summary>Prompt sent ({prompt.n_tokens} '
                            f'{unit}{e(shots)})</summary><pre>{e(prompt.text)}</pre></details>')
        cards.append(f'<div class="ds-card" data-model="{e(card.model)}" data-state="{e(card.state)}">'
                     f'{header}{"".join(body)}</div>')
    return f'<div class="ds-cards">{"".join(cards)}</div>'


def render_notes(view: CompareView) -> str:
    """Markdown for the notes above the cards (escaped: it may quote user text)."""
    lines = [f"**Note:** {html.escape(n)}" for n in view.notes]
    if view.done:
        failed = [c.model for c in view.cards if c.state == "error"]
        ok = len(view.cards) - len(failed)
        lines.insert(0, f"✓ {ok} of {len(view.cards)} model(s) finished"
                        + (f"; could not run: {html.escape(', '.join(failed))}" if failed else "."))
    else:
        running = [c.model for c in view.cards if c.state == "running"]
        lines.insert(0, "Running " + html.escape(", ".join(running)) + "…" if running else "Starting…")
    return "\n\n".join(lines)


def rouge_table(view: CompareView):
    """ROUGE per model as a DataFrame (empty, with the same columns, when there is no reference)."""
    import pandas as pd

    columns = ["model", *(METRIC_LABELS[m] for m in rouge.METRICS), "latency (s)"]
    rows = []
    for card in view.cards:
        if card.scores is None:
            continue
        rows.append([card.model, *(round(card.scores[m], 4) for m in rouge.METRICS),
                     round(card.result.seconds, 3)])
    return pd.DataFrame(rows, columns=columns)


def rouge_figure(rows: Sequence[dict], title: str, label_key: str = "model", hatch_key: str | None = None):
    """Grouped bars: one group per row (model), one bar per ROUGE metric. None when no rows."""
    rows = [r for r in rows if any(r.get(m) is not None for m in rouge.METRICS)]
    if not rows:
        return None
    from matplotlib.figure import Figure

    width = max(6.0, 1.3 * len(rows) + 2.5)
    figure = Figure(figsize=(min(width, 16.0), 3.8), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    colors = ["#4C72B0", "#55A868", "#C44E52", "#8172B2"]
    bar = 0.8 / len(rouge.METRICS)
    for j, metric in enumerate(rouge.METRICS):
        xs = [i + (j - 1.5) * bar for i in range(len(rows))]
        heights = [r.get(metric) or 0.0 for r in rows]
        hatches = ["//" if hatch_key and r.get(hatch_key) else "" for r in rows]
        bars = axes.bar(xs, heights, width=bar, color=colors[j], label=METRIC_LABELS[metric])
        for rectangle, hatch in zip(bars, hatches):
            rectangle.set_hatch(hatch)
            rectangle.set_edgecolor("white" if hatch else colors[j])
    axes.set_xticks(range(len(rows)), [str(r[label_key]) for r in rows], fontsize=9)
    axes.set_ylabel("F-measure")
    top = max(r.get(m) or 0.0 for r in rows for m in rouge.METRICS)
    axes.set_ylim(0, min(1.0, max(0.1, top * 1.25)))
    axes.set_title(title, fontsize=11)
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=colors[j], label=METRIC_LABELS[m]) for j, m in enumerate(rouge.METRICS)]
    if hatch_key and any(r.get(hatch_key) for r in rows):
        handles.append(Patch(facecolor="#999999", hatch="//", edgecolor="white", label="published"))
    axes.legend(handles=handles, ncols=len(handles), fontsize=8, loc="upper left", frameon=False)
    axes.grid(axis="y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def compare_figure(view: CompareView):
    rows = [{"model": c.model, **c.scores} for c in view.cards if c.scores is not None]
    return rouge_figure(rows, "ROUGE vs the reference, by model")


def benchmark_table(view: BenchmarkView):
    import pandas as pd

    columns = ["source", "model", "setting", *(METRIC_LABELS[m] for m in rouge.METRICS), "n"]
    rows = [[r["source"], r["model"], r["description"],
             *(None if r.get(m) is None else round(r[m], 4) for m in rouge.METRICS), r.get("n")]
            for r in view.rows]
    return pd.DataFrame(rows, columns=columns)


def benchmark_figure(view: BenchmarkView):
    rows = []
    for r in view.rows:
        published = r["source"] == PUBLISHED_LABEL
        label = f"{r['model']}\n(course, published)" if published else f"{r['model']}\n({r['description']}, ours)"
        rows.append({**r, "label": label, "published": published})
    return rouge_figure(rows, "Dataset-level ROUGE (hatched: course lab, published)", label_key="label",
                        hatch_key="published")


def batch_tables(output: BatchOutput):
    import pandas as pd

    return pd.DataFrame(output.summary), pd.DataFrame(output.rows)
