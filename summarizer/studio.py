"""What DialogSum Studio's web UI does, as plain functions: no Gradio, no browser.

`app.py` declares the interface and calls into a `Studio`: compare models on one dialogue (a
generator of snapshots while summaries stream in), load DialogSum examples, summarize an uploaded
file, and show the benchmark results written by `python -m summarizer evaluate --output`.

Everything here returns plain data (dataclasses, dicts, pandas frames, matplotlib figures, and
HTML strings in which every piece of user or model text is escaped). Bad input raises `UserError`
with a one-line message; a model that cannot load is reported on its own card.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import os
import queue
import random
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from . import rouge
from .benchmarks_published import PUBLISHED_LABEL, published_rows
from .data import Example, load_split, resolve_source
from .errors import DataError, UserError
from .generation import DecodingSettings, Result, summarize
from .prompts import DEFAULT_MAX_PROMPT_TOKENS, MAX_SHOTS, ShotSettings, clean_text
from .registry import ModelStatus, Registry

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Limits: one shared CPU box serves everyone, so inputs are bounded.

MAX_DIALOGUE_CHARS = 20_000
MAX_REFERENCE_CHARS = 5_000
MAX_TOPIC_CHARS = 100
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_BATCH_ROWS = 200
MAX_NEW_TOKENS_LIMIT = 512
MAX_BEAMS_LIMIT = 8
MAX_PROMPT_TOKENS_LIMIT = 2048
UPLOAD_SUFFIXES = (".csv", ".jsonl")

SHOT_MODES = ("zero-shot", "one-shot", "few-shot")
EXAMPLE_SPLITS = ("validation", "test")
RESULTS_ENV = "STUDIO_RESULTS"
DEFAULT_RESULTS = Path(__file__).resolve().parent.parent / "assets" / "results.json"
PREFERRED_DEFAULTS = ("original", "peft-lora", "longest-3")
METRIC_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
NO_REFERENCE_NOTE = ("No reference summary: ROUGE is not computed. Paste a reference summary "
                     "(or load a DialogSum example) to score the summaries.")

ProgressCallback = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------
# Input checks


def clean_dialogue(text: str | None) -> str:
    """The dialogue as the models will see it; refuses empty and oversized input."""
    text = clean_text(text or "")  # the core's cleaning, so a paste of control characters is empty too
    if not text:
        raise UserError("The dialogue is empty: paste a conversation (or load an example) first.")
    if len(text) > MAX_DIALOGUE_CHARS:
        raise UserError(f"The dialogue is {len(text):,} characters long; the limit is "
                        f"{MAX_DIALOGUE_CHARS:,}. Shorten it and run again.")
    return text


def parse_references(text: str | None) -> list[str]:
    """Reference summaries from one text box: several references are separated by a blank line."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return []
    if len(text) > MAX_REFERENCE_CHARS:
        raise UserError(f"The reference summary is {len(text):,} characters long; the limit is "
                        f"{MAX_REFERENCE_CHARS:,}.")
    return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]


def shot_settings(mode: str, n_shots: int | float = 2, strategy: str = "random", shot_ids: str = "",
                  seed: int | float = 42) -> ShotSettings:
    """zero-/one-/few-shot and the UI's number of shots -> ShotSettings (validated there)."""
    if mode not in SHOT_MODES:
        raise UserError(f"unknown prompt mode {mode!r}; choose one of {', '.join(SHOT_MODES)}")
    shots = {"zero-shot": 0, "one-shot": 1}.get(mode)
    if shots is None:
        shots = int(n_shots or 2)
        if not 2 <= shots <= MAX_SHOTS:
            raise UserError(f"few-shot takes 2 to {MAX_SHOTS} shots, got {shots}")
    ids = tuple(i.strip() for i in (shot_ids or "").split(",") if i.strip())
    return ShotSettings(shots=shots, strategy=strategy or "random", ids=ids, seed=int(seed or 0))


def decoding_settings(max_new_tokens: int | float = 100, num_beams: int | float = 1,
                      do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                      seed: int | float = 0, max_prompt_tokens: int | float = DEFAULT_MAX_PROMPT_TOKENS,
                      batch_size: int = 8) -> DecodingSettings:
    """Decoding settings from the UI, capped so that one request cannot hold the server for long."""
    max_new_tokens, num_beams, max_prompt_tokens = int(max_new_tokens), int(num_beams), int(max_prompt_tokens)
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise UserError(f"max new tokens must be 1 to {MAX_NEW_TOKENS_LIMIT}, got {max_new_tokens}")
    if not 1 <= num_beams <= MAX_BEAMS_LIMIT:
        raise UserError(f"beams must be 1 to {MAX_BEAMS_LIMIT}, got {num_beams}")
    if not 16 <= max_prompt_tokens <= MAX_PROMPT_TOKENS_LIMIT:
        raise UserError(f"the prompt token budget must be 16 to {MAX_PROMPT_TOKENS_LIMIT}, got {max_prompt_tokens}")
    return DecodingSettings(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=bool(do_sample),
                            temperature=float(temperature), top_p=float(top_p), seed=int(seed or 0),
                            batch_size=batch_size, max_prompt_tokens=max_prompt_tokens)


def _safe_name(name: str) -> str:
    """A file name fit to show: letters, digits, dot, dash and underscore only."""
    return re.sub(r"[^\w.\-]+", "_", name)[:80] or "upload"


# ---------------------------------------------------------------------------------------------
# Comparison state


@dataclass
class Card:
    """One model's column in the comparison."""
    model: str
    kind: str = ""
    state: str = "waiting"  # waiting | running | done | error
    text: str = ""  # the summary so far (streaming) or final
    result: Result | None = None
    scores: dict[str, float] | None = None
    shared: set[str] = field(default_factory=set)
    wall_seconds: float = 0.0  # including loading the model on first use

    @property
    def error(self) -> str | None:
        return self.result.error if self.result else None

    def to_dict(self) -> dict:
        result = self.result
        prompt = result.prompt if result else None
        return {"model": self.model, "kind": self.kind, "state": self.state,
                "summary": result.summary if result else (self.text or None),
                "error": self.error, "rouge": self.scores,
                "seconds": round(result.seconds, 4) if result else None,
                "wall_seconds": round(self.wall_seconds, 4),
                "input_tokens": result.input_tokens if result else None,
                "output_tokens": result.output_tokens if result else None,
                "prompt": prompt.text if prompt else None,
                "shot_ids": list(prompt.shot_ids) if prompt else [],
                "notices": list(prompt.notices) if prompt else [],
                "shared_words": sorted(self.shared)}


@dataclass
class CompareView:
    """A snapshot of a comparison: the cards so far and notes for the whole run."""
    cards: list[Card]
    references: list[str]
    notes: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def scored(self) -> bool:
        return bool(self.references)

    def to_dict(self) -> dict:
        return {"done": self.done, "references": self.references, "notes": self.notes,
                "rouge_computed": self.scored, "models": [c.to_dict() for c in self.cards]}


class _Cancelled(Exception):
    """Raised from the streaming callback to stop generation when the caller has gone."""


@dataclass
class PickedExample:
    dialogue: str
    reference: str  # references separated by blank lines, as the reference box takes them
    topic: str
    index: int
    info: str  # markdown, escaped


@dataclass
class BatchOutput:
    rows: list[dict]
    summary: list[dict]
    csv_path: Path
    message: str


@dataclass
class BenchmarkView:
    rows: list[dict]
    note: str
    results_path: Path | None


class Studio:
    """The app's state: one registry, one data source, caches; safe to share between requests."""

    def __init__(self, registry: Registry | None = None, data_source: str | None = None,
                 results_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None):
        self.registry = registry or Registry.from_file()
        self.data_source = resolve_source(data_source)
        self.results_path = Path(results_path or os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)
        self.output_dir = Path(output_dir or tempfile.mkdtemp(prefix="dialogsum-studio-"))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._splits: dict[str, list[Example]] = {}
        self._split_lock = threading.Lock()
        self._statuses: dict[str, ModelStatus] = {}
        self._status_lock = threading.Lock()
        self._checked = threading.Event()

    # --- models -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return self.registry.names()

    def default_models(self) -> list[str]:
        names = self.names()
        chosen = [n for n in PREFERRED_DEFAULTS if n in names]
        return chosen or names[:3]

    def refresh_statuses(self) -> list[ModelStatus]:
        """Check every model's files (never loads weights, never raises)."""
        statuses = []
        for name in self.names():
            try:
                statuses.append(self.registry.status(name, check=True))
            except Exception as err:  # a status check must not take the page down
                statuses.append(ModelStatus(name, self.registry.spec(name).kind, "error", str(err)))
        with self._status_lock:
            self._statuses = {s.name: s for s in statuses}
        self._checked.set()
        return statuses

    def wait_for_statuses(self, timeout: float) -> bool:
        """Wait (up to `timeout` seconds) for the first status check; True once it is done."""
        return self._checked.wait(timeout)

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for the model checkboxes; labels carry each model's status."""
        with self._status_lock:
            known = dict(self._statuses)
        checked = self._checked.is_set()
        choices = []
        for name in self.names():
            status = known.get(name)
            if status is None:
                label = f"{name} · checking…" if not checked else f"{name} · unknown"
            elif status.ok:
                label = f"{name} · {status.state}"
            else:
                label = f"{name} · unavailable: {_shorten(status.reason, 90)}"
            choices.append((label, name))
        return choices

    def status_table(self) -> list[dict]:
        with self._status_lock:
            known = dict(self._statuses)
        rows = []
        for name in self.names():
            spec = self.registry.spec(name)
            status = known.get(name)
            rows.append({"model": name, "kind": spec.kind,
                         "status": status.state if status else "checking",
                         "reason": status.reason if status else "",
                         "description": spec.description})
        return rows

    def start_background(self, warm: Sequence[str] = ()) -> threading.Thread:
        """Check statuses, then load `warm` models, in a daemon thread: start-up never waits."""
        def work():
            try:
                statuses = {s.name: s for s in self.refresh_statuses()}
                for name in warm:
                    if name in statuses and statuses[name].ok:
                        started = time.perf_counter()
                        try:
                            self.registry.get(name)
                            log.info("warmed up %s in %.1fs", name, time.perf_counter() - started)
                        except UserError as err:
                            log.warning("warm-up of %s failed: %s", name, err)
                self.refresh_statuses()
            except Exception:  # never let the background thread crash loudly
                log.exception("background status check failed")
        thread = threading.Thread(target=work, name="studio-warmup", daemon=True)
        thread.start()
        return thread

    # --- data ---------------------------------------------------------------------------------

    def split(self, name: str) -> list[Example]:
        """A split of the configured data source, loaded once."""
        with self._split_lock:
            if name not in self._splits:
                self._splits[name] = load_split(self.data_source, name)
            return self._splits[name]

    def shot_pool(self) -> list[Example]:
        try:
            return self.split("train")
        except DataError as err:
            raise UserError(f"One- and few-shot prompts take their examples from the train split, "
                            f"which is not available: {err}") from None

    def pick_example(self, split: str = "validation", how: str = "random",
                     index: int | float | None = None) -> PickedExample:
        """A DialogSum dialogue with its reference(s) and topic: random, next, or by number."""
        if split not in EXAMPLE_SPLITS:
            raise UserError(f"examples come from {' or '.join(EXAMPLE_SPLITS)}, not {split!r}")
        examples = self.split(split)
        if not examples:
            raise UserError(f"the {split} split is empty")
        current = int(index) if index is not None and index == index else -1  # NaN -> -1
        if how == "random":
            chosen = random.randrange(len(examples))
        elif how == "next":
            chosen = (current + 1) % len(examples)
        elif how == "index":
            if not 0 <= current < len(examples):
                raise UserError(f"example number must be 0 to {len(examples) - 1}, got {current}")
            chosen = current
        else:
            raise UserError(f"unknown choice {how!r}: random, next or index")
        example = examples[chosen]
        info = (f"**{html.escape(example.id)}** · {split} #{chosen} of {len(examples)} · topic: "
                f"{html.escape(example.topic or 'none')} · {len(example.references)} reference(s)")
        return PickedExample(example.dialogue, "\n\n".join(example.references), example.topic or "",
                             chosen, info)

    # --- compare ------------------------------------------------------------------------------

    def compare(self, dialogue: str, reference: str = "", models: Sequence[str] = (),
                shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
                topic: str = "", min_interval: float = 0.2) -> Iterator[CompareView]:
        """Summaries of one dialogue by each chosen model, as snapshots while they stream in.

        All models go through one `summarize` call, so the base model and its LoRA adapters
        decode in one batch and other checkpoints decode alongside (a card's latency is that of
        the batch that produced it); a model that cannot load ends with its reason on its card
        and the others still run. The last snapshot has `done=True`, ROUGE against the
        reference(s) when there are any, and the shared words.
        """
        dialogue = clean_dialogue(dialogue)
        references = parse_references(reference)
        topic = (topic or "").strip()[:MAX_TOPIC_CHARS] or None
        models = list(dict.fromkeys(models or []))
        if not models:
            raise UserError("Choose at least one model to run.")
        for name in models:
            self.registry.spec(name)  # unknown names fail before any work
        decoding = decoding or decoding_settings()
        pool = self.shot_pool() if shots.shots else None
        example = Example(id="input", dialogue=dialogue, references=tuple(references), topic=topic)

        view = CompareView([Card(n, self.registry.spec(n).kind) for n in models], references)
        if not references:
            view.notes.append(NO_REFERENCE_NOTE)
        if decoding.num_beams > 1:
            view.notes.append("Beam search does not stream: each summary appears when it is finished.")
        cards = {c.model: c for c in view.cards}
        events: queue.Queue = queue.Queue()
        stop = threading.Event()

        def on_partial(model, example_id, text):
            if stop.is_set():
                raise _Cancelled("cancelled")
            events.put(("partial", model, text))

        def work():
            try:
                for name in models:
                    events.put(("start", name, None))
                started = time.perf_counter()
                results = summarize(self.registry, models, [example], shots=shots, decoding=decoding,
                                    shot_pool=pool, on_partial=on_partial)
                wall = time.perf_counter() - started
                for result in results:
                    events.put(("done", result.model, (result, result.seconds if result.summary else wall)))
            except UserError as err:
                events.put(("fail", None, err))
            except Exception as err:  # unforeseen: one line for the user, the traceback in the log
                log.exception("comparison failed")
                events.put(("fail", None, UserError(f"the comparison failed: {_one_line(err)}")))
            finally:
                events.put(("end", None, None))

        worker = threading.Thread(target=work, name="studio-compare", daemon=True)
        worker.start()
        try:
            yield view
            last = time.monotonic()
            dirty = False
            while True:
                try:
                    kind, name, payload = events.get(timeout=max(min_interval, 0.05))
                except queue.Empty:
                    kind = None
                if kind == "end":
                    break
                if kind == "fail":
                    raise payload
                if kind == "start":
                    cards[name].state = "running"
                    dirty = True
                elif kind == "partial":
                    cards[name].text = payload
                    dirty = True
                elif kind == "done":
                    self._finish_card(cards[name], *payload, references)
                    dirty = True
                if dirty and time.monotonic() - last >= min_interval:
                    yield view
                    last, dirty = time.monotonic(), False
            view.done = True
            yield view
        finally:
            stop.set()

    def _finish_card(self, card: Card, result: Result, wall: float, references: list[str]) -> None:
        card.result, card.wall_seconds = result, wall
        if result.error:
            card.state, card.text = "error", ""
            return
        card.state, card.text = "done", result.summary or ""
        if references:
            card.scores = rouge.score(card.text, references)
            card.shared = rouge.shared_words(card.text, references)

    def compare_all(self, *args, **kwargs) -> CompareView:
        """The final snapshot of `compare` (for callers that do not stream)."""
        view = None
        for view in self.compare(*args, **kwargs):
            pass
        return view

    # --- batch --------------------------------------------------------------------------------

    def run_batch(self, path: str | os.PathLike | None, models: Sequence[str],
                  shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
                  progress: ProgressCallback | None = None) -> BatchOutput:
        """Summaries (and ROUGE where a row has a reference) for every row of an uploaded file."""
        examples, shown = self.read_upload(path)
        models = list(dict.fromkeys(models or []))
        if not models:
            raise UserError("Choose at least one model to run.")
        for name in models:
            self.registry.spec(name)
        decoding = decoding or decoding_settings()
        pool = self.shot_pool() if shots.shots else None
        total = len(models) * len(examples)
        step = max(1, decoding.batch_size)
        done = 0
        results: list[Result] = []
        report = progress or (lambda fraction, desc: None)
        report(0.0, f"0/{total} summaries")
        for start in range(0, len(examples), step):  # every model on each chunk: mixed batches
            chunk = examples[start:start + step]
            results += summarize(self.registry, models, chunk, shots=shots, decoding=decoding,
                                 shot_pool=pool)
            done += len(chunk) * len(models)
            report(done / total, f"{done}/{total} summaries")
        results.sort(key=lambda r: models.index(r.model))  # stable: model by model, file order
        by_id = {e.id: e for e in examples}
        rows = []
        for result in results:
            example = by_id[result.example_id]
            row = {"id": result.example_id, "topic": example.topic or "", "model": result.model,
                   "summary": result.summary or "", "references": " || ".join(example.references)}
            scores = (rouge.score(result.summary, example.references)
                      if example.references and result.summary is not None else {})
            row.update({m: round(scores[m], 4) if m in scores else None for m in rouge.METRICS})
            row.update({"seconds": round(result.seconds / max(1, result.batch_size), 4),
                        "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                        "error": result.error or "",
                        "notices": " | ".join(result.prompt.notices) if result.prompt else ""})
            rows.append(row)
        summary = _batch_summary(rows, models)
        csv_path = self._write_csv(rows, shown)
        n_ref = sum(1 for e in examples if e.references)
        message = (f"Summarized {len(examples)} dialogue(s) from {shown} with {len(models)} model(s). "
                   + (f"ROUGE is computed for the {n_ref} row(s) with a reference summary."
                      if n_ref else "No row has a reference summary, so ROUGE is not computed."))
        errors = [s for s in summary if s["errors"]]
        if errors:
            message += " Failed: " + "; ".join(f"{s['model']} ({_shorten(s['error'], 120)})" for s in errors)
        return BatchOutput(rows, summary, csv_path, message)

    def read_upload(self, path: str | os.PathLike | None) -> tuple[list[Example], str]:
        """Parse an uploaded CSV/JSONL with summarizer.data, within the size limits."""
        if not path:
            raise UserError("Upload a CSV or JSONL file with a 'dialogue' column first.")
        path = Path(path)
        shown = _safe_name(path.name)
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
                raise UserError(f"{shown}: dialogue {_safe_name(example.id)} is {len(example.dialogue):,} "
                                f"characters long; the limit is {MAX_DIALOGUE_CHARS:,}.")
        return examples, shown

    def _write_csv(self, rows: list[dict], shown: str) -> Path:
        self._clean_outputs()
        folder = Path(tempfile.mkdtemp(dir=self.output_dir))
        path = folder / f"summaries-{Path(shown).stem}.csv"
        columns = ["id", "topic", "model", "summary", "references", *rouge.METRICS, "seconds",
                   "input_tokens", "output_tokens", "error", "notices"]
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else _spreadsheet_safe(row.get(k)))
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

    # --- benchmark ----------------------------------------------------------------------------

    def benchmark(self) -> BenchmarkView:
        """Dataset-level ROUGE from the server's results file, with the course's published rows.

        The file is chosen by the server's configuration ($STUDIO_RESULTS or assets/results.json);
        nothing a user sends can change which file is read.
        """
        rows: list[dict] = []
        path = self.results_path
        if not path.is_file():
            note = (f"No results file on this server yet ({html.escape(path.name)}). Write one with "
                    "`python -m summarizer evaluate --models original,instruct,peft-lora --split test "
                    "--output runs/results.json` and set $STUDIO_RESULTS to it (to publish it in "
                    "assets/results.json keep only its settings and aggregate: its rows quote DialogSum). "
                    "Below: the course's published figures only.")
        else:
            try:
                rows = read_results(path)
                settings = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
                n = settings.get("n_examples")
                note = (f"Results from `{html.escape(path.name)}`: {len(rows)} model/shot row(s) on "
                        f"{n if n is not None else 'an unknown number of'} dialogue(s) "
                        f"(reference: {html.escape(str(settings.get('reference', 'all')))}). Rows labelled "
                        f"“{PUBLISHED_LABEL}” are the course's figures, shown for reference; they were not "
                        "produced by this project and may use different settings and dialogues.")
            except UserError as err:
                note = f"The results file could not be read: {html.escape(str(err))}"
        for row in published_rows():
            rows.append({**row, "n": None})
        return BenchmarkView(rows, note, path if path.is_file() else None)


def read_results(path: Path) -> list[dict]:
    """Aggregate rows of an `evaluate --output x.json` file, labelled as this project's."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path.name}: not a readable JSON file ({_one_line(err)})") from None
    aggregate = document.get("aggregate") if isinstance(document, dict) else None
    if not isinstance(aggregate, list):
        raise UserError(f"{path.name}: no 'aggregate' list (write it with `python -m summarizer evaluate --output`)")
    rows = []
    for entry in aggregate:
        if not isinstance(entry, dict) or "model" not in entry:
            continue
        rows.append({"source": "this project (evaluate)", "model": str(entry["model"]),
                     "description": f"{entry.get('shots', 0)}-shot", "shots": entry.get("shots", 0),
                     **{m: _number(entry.get(m)) if entry.get("n") else None for m in rouge.METRICS},
                     "n": entry.get("n")})
    return rows


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


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


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(value):
    """Text a spreadsheet would run as a formula (=, +, -, @ first) gets a leading apostrophe.

    The result CSV quotes uploaded text (ids, dialogue turns, references); opened in Excel or
    LibreOffice a cell like `=HYPERLINK(...)` or `=cmd|...` would otherwise be evaluated.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


def _shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Rendering: HTML (escaped), tables and figures


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
