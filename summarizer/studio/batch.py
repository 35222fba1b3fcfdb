"""Summarize an uploaded CSV/JSONL file, or the first dialogues of a DialogSum split, with several
models in one to three prompt templates: summaries, ROUGE, a result CSV, and the matrix of
dialogues x (model, template) as a self-contained HTML file and as JSON."""

from __future__ import annotations

import csv
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from .. import pipeline, rouge
from ..csv_cells import spreadsheet_safe
from ..data import Example, load_split
from ..errors import DataError, UserError
from ..generation import DecodingSettings
from ..prompts import ShotSettings
from ..request import LIMITS, SummaryRequest, model_names
from ..templates import Template, resolve_templates
from .batch_matrix import Matrix, build_matrix, write_exports
from .examples import ExampleLibrary
from .inputs import (EXAMPLE_SPLITS, MAX_BATCH_ROWS, MAX_DIALOGUE_CHARS, MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES,
                     decoding_settings, safe_name, shorten)
from .models import ModelCatalog

ProgressCallback = Callable[[float, str], None]

FILE_SOURCE = "file"
SOURCES = (FILE_SOURCE, *EXAMPLE_SPLITS)  # an uploaded file, or the server's DialogSum split
MAX_TEMPLATES = 3
DEFAULT_SPLIT_LIMIT = 20
# Templates multiply the work: one run may ask no more summaries than the largest run without them.
MAX_SUMMARIES = MAX_BATCH_ROWS * LIMITS.models


@dataclass
class BatchOutput:
    rows: list[dict]
    summary: list[dict]
    csv_path: Path
    message: str
    matrix: Matrix | None = None
    html_path: Path | None = None
    json_path: Path | None = None


def batch_templates(prompts: Sequence[str | Template] | str | None) -> tuple[Template, ...]:
    """One to three templates (built-in names or written texts); none: each model's default."""
    if isinstance(prompts, (str, Template)):
        prompts = [prompts]
    chosen = [p for p in (prompts or ()) if not (isinstance(p, str) and not p.strip())]
    templates = tuple(resolve_templates(chosen))
    if len(templates) > MAX_TEMPLATES:
        raise UserError(f"Choose at most {MAX_TEMPLATES} prompt templates per run, got {len(templates)}.")
    return templates


class BatchRunner:
    """Summarize uploaded files. Owns the folder its CSV results go to (cleaned as it goes)."""

    def __init__(self, models: ModelCatalog, examples: ExampleLibrary, output_dir: Path):
        self.models, self.examples, self.output_dir = models, examples, Path(output_dir)

    def run(self, path: str | os.PathLike | None, models: Sequence[str],
            shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
            progress: ProgressCallback | None = None, speakers: str = "auto", *,
            templates: Sequence[str | Template] | None = (), split: str | None = FILE_SOURCE,
            limit: int | float | None = DEFAULT_SPLIT_LIMIT) -> BatchOutput:
        """Summaries (and ROUGE where a row has a reference) for every dialogue of an uploaded file
        (split "file") or the first `limit` of the server's DialogSum split, by every model in
        every template."""
        examples, shown = self.read_source(path, split, limit)
        request = SummaryRequest(tuple(examples), model_names(models), shots, decoding or decoding_settings(),
                                 speakers, batch_templates(templates))
        request.check_models(self.models.registry)
        columns = len(request.models) * max(1, len(request.templates))
        if columns * len(examples) > MAX_SUMMARIES:
            raise UserError(f"{len(examples)} dialogue(s) x {columns} model/template column(s) is "
                            f"{columns * len(examples):,} summaries; the limit is {MAX_SUMMARIES:,} per run.")
        scored = self._summarize(request, progress or (lambda fraction, desc: None))
        rows = [_row(item) for item in scored]
        summary = _batch_summary(rows)
        folder = self._new_folder()
        stem = safe_name(Path(shown).stem).strip("_")
        csv_path = self._write_csv(rows, folder / f"summaries-{stem}.csv")
        matrix = build_matrix(rows, examples, shown)
        html_path, json_path = write_exports(matrix, folder, stem)
        return BatchOutput(rows, summary, csv_path, _message(examples, shown, request, summary),
                           matrix, html_path, json_path)

    def read_source(self, path, split: str | None, limit) -> tuple[list[Example], str]:
        """The uploaded file, or the first `limit` dialogues of the server's configured split
        (never a path a user names)."""
        split = split or FILE_SOURCE
        if split == FILE_SOURCE:
            return self.read_upload(path)
        if split not in EXAMPLE_SPLITS:
            raise UserError(f"dialogues come from an uploaded file or the DialogSum "
                            f"{' or '.join(EXAMPLE_SPLITS)} split, not {str(split)[:40]!r}")
        count = _split_limit(limit)
        try:
            examples = self.examples.split(split)[:count]
        except DataError as err:
            raise UserError(f"the DialogSum {split} split is not available on this server: "
                            f"{shorten(str(err), 160)}") from None
        if not examples:
            raise UserError(f"the DialogSum {split} split is empty on this server")
        return examples, f"DialogSum {split} (first {len(examples)})"

    def _summarize(self, request: SummaryRequest, report: ProgressCallback) -> list[pipeline.Scored]:
        """Chunk by chunk (every model on each chunk: mixed batches), reporting progress."""
        pool = self.examples.shot_pool() if request.shots.shots else None
        total = len(request.models) * max(1, len(request.templates)) * len(request.examples)
        step = max(1, request.decoding.batch_size)
        scored: list[pipeline.Scored] = []
        report(0.0, f"0/{total} summaries")
        for start in range(0, len(request.examples), step):
            chunk = replace(request, examples=request.examples[start:start + step])
            scored += pipeline.run(self.models.registry, chunk, pool, shared_words=False)
            report(len(scored) / total, f"{len(scored)}/{total} summaries")
        models = {name: i for i, name in enumerate(request.models)}
        templates = {t.name: i for i, t in enumerate(request.templates)}
        # stable: model by model, template by template, in file order
        return sorted(scored, key=lambda s: (models[s.result.model], templates.get(s.result.template, 0)))

    def read_upload(self, path: str | os.PathLike | None) -> tuple[list[Example], str]:
        """Parse an uploaded CSV/JSONL with summarizer.data, within the size limits."""
        if not path:
            raise UserError("Upload a CSV or JSONL file with a 'dialogue' column first.")
        path = Path(path)
        shown = safe_name(path.name)
        if path.suffix.lower() not in UPLOAD_SUFFIXES:
            raise UserError(f"{shown}: unsupported file type; upload a .csv or .jsonl file "
                            "with a 'dialogue' column (and optionally 'summary', 'id', 'topic')")
        if not path.is_file():
            raise UserError(f"{shown}: the upload is missing; upload it again")
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise UserError(f"{shown} is {size / 1024 / 1024:.1f} MB; the limit is "
                            f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB.")
        try:
            examples = load_split(str(path), "test")
        except DataError as err:
            raise UserError(str(err).replace(str(path), shown)) from None
        if not examples:
            raise UserError(f"{shown} has no rows.")
        if len(examples) > MAX_BATCH_ROWS:
            raise UserError(f"{shown} has {len(examples)} dialogues; the limit is {MAX_BATCH_ROWS} per file. "
                            "Split it into smaller files.")
        for example in examples:
            if len(example.dialogue) > MAX_DIALOGUE_CHARS:
                raise UserError(f"{shown}: dialogue {safe_name(example.id)} is {len(example.dialogue):,} "
                                f"characters long; the limit is {MAX_DIALOGUE_CHARS:,}.")
        return examples, shown

    def _new_folder(self) -> Path:
        self._clean_outputs()
        return Path(tempfile.mkdtemp(dir=self.output_dir))

    def _write_csv(self, rows: list[dict], path: Path) -> Path:
        columns = ["id", "topic", "model", "template", "summary", "references", *rouge.METRICS, "support", "seconds",
                   "input_tokens", "output_tokens", "error", "speakers", "notices"]
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else spreadsheet_safe(row.get(k)))
                                 for k in columns})
        return path

    def _clean_outputs(self, max_age: float = 3600.0) -> None:
        """Drop result files older than an hour (a long-running server must not fill its disk)."""
        now = time.time()
        for folder in self.output_dir.iterdir():
            try:
                if not folder.is_dir() or now - folder.stat().st_mtime <= max_age:
                    continue
                for entry in folder.iterdir():
                    entry.unlink()
                folder.rmdir()
            except OSError:
                pass


def _split_limit(limit) -> int:
    try:
        count = int(float(limit if limit not in (None, "") else DEFAULT_SPLIT_LIMIT))
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"the number of dialogues must be a number, got {str(limit)[:40]!r}") from None
    if not 1 <= count <= MAX_BATCH_ROWS:
        raise UserError(f"take 1 to {MAX_BATCH_ROWS} dialogues from a split, got {count}")
    return count


def _row(item: pipeline.Scored) -> dict:
    result, example = item.result, item.example
    row = {"id": result.example_id, "topic": example.topic or "", "model": result.model,
           "template": getattr(result, "template", "") or "",
           "summary": result.summary or "", "references": " || ".join(example.references)}
    rouge_scores = item.scores.rouge if item.scores and item.scores.rouge else {}
    row.update({m: round(rouge_scores[m], 4) if m in rouge_scores else None for m in rouge.METRICS})
    row["support"] = round(item.scores.support, 4) if item.scores and item.scores.support is not None else None
    row.update({"seconds": round(result.seconds / max(1, result.batch_size), 4),
                "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                "error": result.error or "",
                "speakers": ", ".join(f"{n} → {t}" for n, t in result.speaker_mapping.items())
                            or ", ".join(result.speakers),
                "notices": " | ".join([*(result.prompt.notices if result.prompt else []),
                                       *([result.speaker_note] if result.speaker_note else [])])})
    return row


def _message(examples: list[Example], shown: str, request: SummaryRequest, summary: list[dict]) -> str:
    n_ref = sum(1 for e in examples if e.references)
    templates = (f" in {len(request.templates)} template(s) ({', '.join(t.name for t in request.templates)})"
                 if request.templates else " in each model's default template")
    message = (f"Summarized {len(examples)} dialogue(s) from {shown} with {len(request.models)} model(s)"
               f"{templates}. "
               + (f"ROUGE is computed for the {n_ref} row(s) with a reference summary."
                  if n_ref else "No row has a reference summary, so ROUGE is not computed."))
    errors = [s for s in summary if s["errors"]]
    if errors:
        message += " Failed: " + "; ".join(f"{s['model']} · {s['template']} ({shorten(s['error'], 120)})"
                                           for s in errors)
    return message


def _batch_summary(rows: list[dict]) -> list[dict]:
    """Per model x template, in run order: counts, mean ROUGE, seconds per summary, errors."""
    summary = []
    for name, template in dict.fromkeys((r["model"], r["template"]) for r in rows):
        mine = [r for r in rows if r["model"] == name and r["template"] == template]
        ok = [r for r in mine if not r["error"]]
        scored = [r for r in ok if r["rouge1"] is not None]
        errors = [r["error"] for r in mine if r["error"]]
        entry = {"model": name, "template": template, "summaries": len(ok), "scored": len(scored)}
        entry.update({m: round(sum(r[m] for r in scored) / len(scored), 4) if scored else None
                      for m in rouge.METRICS})
        entry.update({"seconds_per_summary": round(sum(r["seconds"] for r in ok) / len(ok), 4) if ok else None,
                      "errors": len(errors), "error": errors[0] if errors else ""})
        summary.append(entry)
    return summary
