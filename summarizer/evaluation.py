"""Models x prompt templates x shot settings on a split: summaries through `generation.summarize`,
scored with ROUGE.

Rows and aggregates name their template; a results file written before templates existed has
none, and `template_of` reads such a row as the experiment's (the only template there was).

The CLI's `evaluate`, the app's benchmark data and training's end-of-run evaluation all call
`evaluate` here, so a number means the same thing wherever it is shown.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from . import diagnostics, distributed, faithfulness, rouge, scoring
from .data import Example
from .errors import UserError
from .generation import DecodingSettings, summarize_request
from .request import SummaryRequest
from .prompts import ShotSettings
from .registry import Registry
from .templates import DEFAULT_TEMPLATE, Template

BASELINE_MODEL = "original"


def template_of(row: dict) -> str:
    """The template a results row was made with; older results files have none: the experiment's."""
    return row.get("template") or DEFAULT_TEMPLATE


@dataclass
class EvaluationReport:
    rows: list[dict] = field(default_factory=list)  # one per (model, template, shots, example)
    aggregate: list[dict] = field(default_factory=list)  # one per (model, template, shots): means and n
    settings: dict = field(default_factory=dict)

    def score(self, model: str, shots: int = 0, template: str | None = None) -> dict:
        """The aggregate row of `model` at `shots` in `template` (None: its first, the only one
        when each model ran in its default template)."""
        for row in self.aggregate:
            if row["model"] == model and row["shots"] == shots and template in (None, template_of(row)):
                return row
        raise KeyError((model, shots, template))

    def improvements(self, baseline: str = BASELINE_MODEL) -> list[dict]:
        """Absolute ROUGE gains over `baseline` in the same template at the same shot count, as
        the course lab prints."""
        key = lambda r: (template_of(r), r["shots"])
        base = {key(r): r for r in self.aggregate if r["model"] == baseline and r["n"]}
        return [{"model": r["model"], "template": template_of(r), "shots": r["shots"],
                 **{m: r[m] - base[key(r)][m] for m in rouge.METRICS}}
                for r in self.aggregate
                if r["model"] != baseline and key(r) in base and r["n"]]

    def to_dict(self) -> dict:
        return {"settings": self.settings, "aggregate": self.aggregate,
                "improvements_over_original": self.improvements(), "rows": self.rows}

    def save(self, path: str | Path) -> Path:
        """JSON (everything) or CSV (one row per summary), by the file's extension."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix.lower() == ".csv":
            columns = ["model", "template", "shots", "id", "summary", *rouge.METRICS, "support", "unsupported",
                       "seconds", "input_tokens", "output_tokens", "error", "notices", "raw_summary"]
            with tmp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                for row in self.rows:
                    writer.writerow({**row, "notices": " | ".join(row.get("notices") or []),
                                     "unsupported": " | ".join(s["text"] for s in row.get("unsupported") or [])})
        else:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # a crash mid-write never leaves a half-written report under the real name
        return path


def evaluate(registry: Registry, model_names: Sequence[str], examples: Sequence[Example],
             shot_counts: Sequence[int] = (0,), decoding: DecodingSettings = DecodingSettings(),
             shot_settings: ShotSettings = ShotSettings(), shot_pool: Sequence[Example] | None = None,
             reference: str = "all", use_stemmer: bool = False, progress: bool = True,
             speakers: str = "auto", templates: Sequence[Template | str] | None = None) -> EvaluationReport:
    """ROUGE of every model in every template at every shot count on `examples` (which must have
    references). `templates` as in `summarize`: None runs each model in its default template.

    Under `torchrun` / `accelerate launch` the summaries are split across the processes (whole
    batches, formed as one process would form them) and every process gets the full report;
    its settings say how many processes produced it. `speakers` as in `summarize`: the summary
    scored is the one the user sees (names restored), against the reference as given."""
    if not examples:
        raise UserError("no examples to evaluate")
    unscored = [e.id for e in examples if not e.references]
    if unscored:
        raise UserError(f"{len(unscored)} example(s) have no reference summary (first: {unscored[0]})")
    for example in examples:  # a reference that does not exist fails before any generation
        rouge.select_references(example.references, reference)
    request = SummaryRequest(tuple(examples), tuple(model_names), shot_settings, decoding, speakers,
                             tuple(templates or ()))
    request.check_models(registry)
    used = request.templates or [registry.spec(name).default_template for name in request.models]
    processes = distributed.processes()
    report = EvaluationReport(settings={
        "models": list(model_names), "shots": list(shot_counts), "n_examples": len(examples),
        "templates": {t.name: t.text for t in used},
        "decoding": decoding.__dict__,
        "shot_strategy": shot_settings.strategy, "shot_seed": shot_settings.seed, "speakers": speakers,
        "processes": processes.num_processes if processes is not None else 1})
    for shots in shot_counts:
        results = summarize_request(registry, replace(request, shots=replace(shot_settings, shots=shots)),
                                    shot_pool, progress=progress, processes=processes)
        report.rows += [{**result.to_dict(), "id": result.example_id, "shots": shots}
                        for result in results]
    return rescore(report, examples, reference, use_stemmer)


def rescore(report: EvaluationReport, examples: Sequence[Example], reference: str = "all",
            use_stemmer: bool = False) -> EvaluationReport:
    """The report's summaries scored (again) against `reference`, with or without stemming: one
    generation run gives both the project's default scoring and the DialogSum paper's."""
    references = {e.id: rouge.select_references(e.references, reference) for e in examples}
    dialogues = {e.id: e.dialogue for e in examples}
    scored = EvaluationReport(settings={**report.settings, "reference": reference,
                                        "use_stemmer": use_stemmer})
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for old in report.rows:
        row = {k: v for k, v in old.items() if k not in rouge.METRICS}
        row["template"] = template_of(row)
        if row.get("summary") is not None:
            scores = scoring.score(row["summary"], references[row["id"]], dialogues[row["id"]],
                                   use_stemmer=use_stemmer, shared=False)
            row.update(scores.rouge, support=round(scores.support, 4), unsupported=scores.unsupported())
        scored.rows.append(row)
        groups.setdefault((row["model"], row["template"], row["shots"]), []).append(row)
    for (model, template, shots), rows in groups.items():
        ok = [r for r in rows if r.get("error") is None]
        errors = [r["error"] for r in rows if r.get("error")]
        checks = diagnostics.diagnose([r["summary"] for r in ok], [references[r["id"]] for r in ok],
                                      use_stemmer) if ok else {}
        scored.aggregate.append({
            "model": model, "template": template, "shots": shots, **rouge.aggregate(ok), **checks, **_support(ok),
            "seconds": sum(r["seconds"] / max(1, r["batch_size"]) for r in ok),
            "errors": len(errors), "error": errors[0] if errors else None})
    return scored


def _support(rows: Sequence[dict]) -> dict:
    """Mean faithfulness support, and the share of summaries with a name or number (time, date,
    amount) the dialogue does not have."""
    if not rows:
        return {"support": None, "unsupported_particulars": None}
    particular = [any(s["kind"] in faithfulness.PARTICULARS for s in r["unsupported"]) for r in rows]
    return {"support": sum(r["support"] for r in rows) / len(rows),
            "unsupported_particulars": sum(particular) / len(rows)}


def format_table(rows: Sequence[dict], columns: Sequence[str], percent: bool = False) -> str:
    """A plain-text table; ROUGE values as fractions (or signed percentages for improvements)."""
    def cell(row, column):
        value = row.get(column)
        if column in rouge.METRICS and isinstance(value, float):
            return f"{value * 100:+.2f}%" if percent else f"{value:.4f}"
        if column in ("distinct", "repetitive", "rouge1_shuffled", "support", "unsupported_particulars") \
                and isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, float):
            return f"{value:.1f}"
        return "" if value is None else str(value)
    body = [[cell(r, c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(b) for b in body)])
