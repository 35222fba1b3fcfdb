"""Dataset-level ROUGE and faithfulness support from an `evaluate --output` file, beside the
course's published figures."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from .. import rouge
from ..benchmarks_published import PUBLISHED_LABEL, published_rows
from .. import settings
from ..errors import UserError, one_line
from ..evaluation import template_of
from .inputs import DEFAULT_RESULTS, RESULTS_ENV


@dataclass
class BenchmarkView:
    rows: list[dict]
    note: str
    results_path: Path | None


class BenchmarkResults:
    """The server's results file (never one a user names) as the Benchmark tab shows it."""

    def __init__(self, results_path: str | Path | None = None):
        self.path = Path(results_path or settings.text(RESULTS_ENV) or DEFAULT_RESULTS)

    def view(self) -> BenchmarkView:
        """Dataset-level ROUGE from the server's results file, with the course's published rows.

        The file is chosen by the server's configuration ($STUDIO_RESULTS or assets/mini/results.json);
        nothing a user sends can change which file is read.
        """
        rows: list[dict] = []
        path = self.path
        if not path.is_file():
            note = (f"No results file on this server yet ({html.escape(path.name)}). Write one with "
                    "`python -m summarizer evaluate --models original,instruct,peft-lora --split test "
                    "--output runs/results.json` and set $STUDIO_RESULTS to it (to publish one, keep only "
                    "its settings and aggregate: its rows quote DialogSum). "
                    "Below: the course's published figures only.")
        else:
            try:
                rows = read_results(path)
                settings = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
                n = settings.get("n_examples")
                templates = sorted({r["template"] for r in rows})
                note = (f"Results from `{html.escape(path.name)}`: {len(rows)} model/template/shot row(s) "
                        f"in {len(templates)} prompt template(s) ({html.escape(', '.join(templates))}) on "
                        f"{n if n is not None else 'an unknown number of'} dialogue(s) "
                        f"(reference: {html.escape(str(settings.get('reference', 'all')))}). Rows labelled "
                        f"“{PUBLISHED_LABEL}” are the course's figures, shown for reference; they were not "
                        "produced by this project and may use different settings and dialogues.")
            except UserError as err:
                note = f"The results file could not be read: {html.escape(str(err))}"
        for row in published_rows():
            rows.append({**row, "template": None, "n": None})  # the lab's own prompt, not one of ours
        return BenchmarkView(rows, note, path if path.is_file() else None)


def read_results(path: Path) -> list[dict]:
    """Aggregate rows of an `evaluate --output x.json` file, labelled as this project's."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path.name}: not a readable JSON file ({one_line(err)})") from None
    aggregate = document.get("aggregate") if isinstance(document, dict) else None
    if not isinstance(aggregate, list):
        raise UserError(f"{path.name}: no 'aggregate' list (write it with `python -m summarizer evaluate --output`)")
    # The miniature experiment's file also carries the DialogSum paper's scoring of the same run.
    paper = document.get("paper_scoring")
    paper_aggregate = paper.get("aggregate") if isinstance(paper, dict) else None
    return (_rows(aggregate, "") +
            _rows(paper_aggregate if isinstance(paper_aggregate, list) else [],
                  ", paper's scoring (first reference, stemmed)"))


def _rows(aggregate: list, scoring: str) -> list[dict]:
    """One row per (model, template, shots); a file written before templates reads as "experiment"."""
    rows = []
    for entry in aggregate:
        if not isinstance(entry, dict) or "model" not in entry:
            continue
        rows.append({"source": "this project (evaluate)", "model": str(entry["model"]),
                     "template": str(template_of(entry)),
                     "description": f"{entry.get('shots', 0)}-shot{scoring}", "shots": entry.get("shots", 0),
                     **{m: _number(entry.get(m)) if entry.get("n") else None
                        for m in (*rouge.METRICS, "support", "unsupported_particulars")},
                     "n": entry.get("n")})
    return rows


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
