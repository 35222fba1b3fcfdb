"""Summarize an uploaded CSV/JSONL file with several models: summaries, ROUGE and a result CSV."""

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
from ..request import SummaryRequest, model_names
from .examples import ExampleLibrary
from .inputs import (MAX_BATCH_ROWS, MAX_DIALOGUE_CHARS, MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES,
                     decoding_settings, safe_name, shorten)
from .models import ModelCatalog

ProgressCallback = Callable[[float, str], None]


@dataclass
class BatchOutput:
    rows: list[dict]
    summary: list[dict]
    csv_path: Path
    message: str


class BatchRunner:
    """Summarize uploaded files. Owns the folder its CSV results go to (cleaned as it goes)."""

    def __init__(self, models: ModelCatalog, examples: ExampleLibrary, output_dir: Path):
        self.models, self.examples, self.output_dir = models, examples, Path(output_dir)

    def run(self, path: str | os.PathLike | None, models: Sequence[str],
            shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
            progress: ProgressCallback | None = None, speakers: str = "auto") -> BatchOutput:
        """Summaries (and ROUGE where a row has a reference) for every row of an uploaded file."""
        examples, shown = self.read_upload(path)
        request = SummaryRequest(tuple(examples), model_names(models), shots, decoding or decoding_settings(),
                                 speakers)
        request.check_models(self.models.registry)
        scored = self._summarize(request, progress or (lambda fraction, desc: None))
        rows = [_row(item) for item in scored]
        summary = _batch_summary(rows, request.models)
        csv_path = self._write_csv(rows, shown)
        return BatchOutput(rows, summary, csv_path, _message(examples, shown, request.models, summary))

    def _summarize(self, request: SummaryRequest, report: ProgressCallback) -> list[pipeline.Scored]:
        """Chunk by chunk (every model on each chunk: mixed batches), reporting progress."""
        pool = self.examples.shot_pool() if request.shots.shots else None
        total = len(request.models) * len(request.examples)
        step = max(1, request.decoding.batch_size)
        scored: list[pipeline.Scored] = []
        report(0.0, f"0/{total} summaries")
        for start in range(0, len(request.examples), step):
            chunk = replace(request, examples=request.examples[start:start + step])
            scored += pipeline.run(self.models.registry, chunk, pool, shared_words=False)
            report(len(scored) / total, f"{len(scored)}/{total} summaries")
        order = {name: i for i, name in enumerate(request.models)}
        return sorted(scored, key=lambda s: order[s.result.model])  # stable: model by model, file order

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

    def _write_csv(self, rows: list[dict], shown: str) -> Path:
        self._clean_outputs()
        folder = Path(tempfile.mkdtemp(dir=self.output_dir))
        path = folder / f"summaries-{Path(shown).stem}.csv"
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
        for entry in self.output_dir.glob("*/*.csv"):
            try:
                if now - entry.stat().st_mtime > max_age:
                    entry.unlink()
                    entry.parent.rmdir()
            except OSError:
                pass


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


def _message(examples: list[Example], shown: str, models: Sequence[str], summary: list[dict]) -> str:
    n_ref = sum(1 for e in examples if e.references)
    message = (f"Summarized {len(examples)} dialogue(s) from {shown} with {len(models)} model(s). "
               + (f"ROUGE is computed for the {n_ref} row(s) with a reference summary."
                  if n_ref else "No row has a reference summary, so ROUGE is not computed."))
    errors = [s for s in summary if s["errors"]]
    if errors:
        message += " Failed: " + "; ".join(f"{s['model']} ({shorten(s['error'], 120)})" for s in errors)
    return message


def _batch_summary(rows: list[dict], models: Sequence[str]) -> list[dict]:
    summary = []
    for name in models:
        mine = [r for r in rows if r["model"] == name]
        ok = [r for r in mine if not r["error"]]
        scored = [r for r in ok if r["rouge1"] is not None]
        errors = [r["error"] for r in mine if r["error"]]
        entry = {"model": name, "summaries": len(ok), "scored": len(scored)}
        entry.update({m: round(sum(r[m] for r in scored) / len(scored), 4) if scored else None
                      for m in rouge.METRICS})
        entry.update({"seconds_per_summary": round(sum(r["seconds"] for r in ok) / len(ok), 4) if ok else None,
                      "errors": len(errors), "error": errors[0] if errors else ""})
        summary.append(entry)
    return summary
