"""What a visitor may ask a training job for, and the limits of a shared server.

A request is a dict named by `training`'s own fields (RunSettings and the method's Config: `base`,
`max_steps`, `limit_train`, `lora_r`, ... and `method`, `name`). It is parsed by the same
`HfArgumentParser` over the same dataclasses as `python -m training METHOD`, so the page, the API
and the command line share one definition of every setting, its type, choices and default.
Visitors may set only `VISITOR_FIELDS` of RunSettings (never an output folder or a data path) and
every field of the method's Config; any field the training package adds later under one of those
names (such as a `prompt` template) is passed through as it is.

Every check here runs before anything starts; each refusal is one line (UserError).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from summarizer import settings
from summarizer.errors import UserError, one_line

from .config import RunSettings, from_namespace
from .methods import METHODS, get_method

TRAINING_ENV = "STUDIO_TRAINING"  # on a Space: "1" enables the Train tab (off by default there)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
# RunSettings fields a visitor may set (the rest: data, output, resume... are the server's).
VISITOR_FIELDS = ("base", "name", "limit_train", "limit_eval", "max_steps",
                  "per_device_train_batch_size", "gradient_accumulation_steps", "group_by_length",
                  "save_steps", "logging_steps", "seed", "max_source_length", "max_target_length",
                  "prompt")
DEFAULT_SAVE_STEPS = 100  # a Stop keeps at most this many steps' work unsaved (it saves first anyway)

# Uploads: a CSV or JSONL file of dialogue/summary pairs.
UPLOAD_SUFFIXES = (".csv", ".jsonl")
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # the app's upload limit (summarizer.studio.MAX_UPLOAD_BYTES)
MIN_UPLOAD_ROWS = 10
MAX_UPLOAD_ROWS = 5_000
MAX_UPLOAD_DIALOGUE_CHARS = 20_000
MAX_UPLOAD_SUMMARY_CHARS = 2_000


@dataclass(frozen=True)
class TrainingCaps:
    """The limits of one server, shown on the page beside the form."""
    enabled: bool
    reason: str  # why training is off, when it is
    max_steps: int
    max_minutes: float  # a job stops (keeping its checkpoint) when it has run this long
    max_batch_size: int
    max_limit_eval: int
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_upload_rows: int = MAX_UPLOAD_ROWS
    jobs_per_client: int = 1  # queued or running at once
    jobs_per_day: int | None = None  # started by everyone in the last 24 hours
    max_queued: int = 8

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def on_space(environ=os.environ) -> bool:
    return bool(settings.text("SPACE_ID", environ))


def training_caps(environ=os.environ) -> TrainingCaps:
    """Locally training is on unless STUDIO_TRAINING=0, with generous caps; on a Space only with
    STUDIO_TRAINING=1, and every visitor shares one small budget."""
    chosen = settings.flag(TRAINING_ENV, environ) if settings.text(TRAINING_ENV, environ) else None
    if on_space(environ):
        enabled = chosen is True
        return TrainingCaps(enabled, "" if enabled else f"training is off on this Space "
                                                        f"(its owner can set {TRAINING_ENV}=1)",
                            max_steps=500, max_minutes=30, max_batch_size=16, max_limit_eval=100,
                            jobs_per_day=20, max_queued=4)
    enabled = chosen is not False
    return TrainingCaps(enabled, "" if enabled else f"training is off ({TRAINING_ENV}=0)",
                        max_steps=20_000, max_minutes=12 * 60, max_batch_size=64,
                        max_limit_eval=1_000)


class _Parser:
    """`HfArgumentParser` over RunSettings and a method's Config, refusing in one line."""

    def __init__(self, method: str):
        from transformers import HfArgumentParser

        class Refusing(HfArgumentParser):
            def error(self, message):
                raise UserError(message)

        self.module = get_method(method)
        self.parser = Refusing([RunSettings, self.module.Config])

    def fields(self) -> dict[str, object]:
        """Visitor-settable field name -> argparse action (its type, choices, default, help)."""
        config = {f.name for f in dataclasses.fields(self.module.Config)}
        settings = {f.name for f in dataclasses.fields(RunSettings)}
        allowed = config | (settings & set(VISITOR_FIELDS))
        return {a.dest: a for a in self.parser._actions if a.dest in allowed}


def form_fields(method: str) -> list[dict]:
    """The settings a visitor may set for `method`, from the dataclasses (for building a form)."""
    rows = []
    for name, action in _Parser(method).fields().items():
        default = action.default
        rows.append({"name": name, "default": list(default) if isinstance(default, tuple) else default,
                     "type": getattr(action.type, "__name__", str(action.type)),
                     "choices": list(action.choices) if action.choices else None,
                     "many": action.nargs == "+", "help": action.help or ""})
    return rows


def _argv(name: str, value) -> list[str]:
    flag = f"--{name}"
    if isinstance(value, bool):
        return [flag, "true" if value else "false"]
    if isinstance(value, (list, tuple)):
        if not value:
            raise UserError(f"{name}: give at least one value")
        return [flag, *map(str, value)]
    if isinstance(value, str) and "," in value and name == "target_modules":
        return [flag, *[v.strip() for v in value.split(",") if v.strip()]]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number box sends 300.0 for 300
    return [flag, str(value)]


def parse_request(params: dict) -> tuple[str, RunSettings, object]:
    """(method, RunSettings, Config) from a visitor's request, through training's own parser.
    `base` stays what the visitor named (a registry name); the caller resolves it."""
    if not isinstance(params, dict):
        raise UserError("the request must be a JSON object of training settings")
    method = params.get("method") or "lora"
    if method not in METHODS:
        raise UserError(f"unknown training method {method!r}; choose one of {', '.join(METHODS)}")
    parser = _Parser(method)
    allowed = parser.fields()
    unknown = sorted(k for k in params if k != "method" and k not in allowed)
    if unknown:
        raise UserError(f"unknown or server-only setting(s): {', '.join(unknown)}; a {method} job "
                        f"takes {', '.join(['method', *allowed])}")
    argv = []
    for key, value in params.items():
        if key != "method" and value is not None and value != "":
            argv += _argv(key, value)
    namespace = parser.parser.parse_args(argv)
    return method, from_namespace(RunSettings, namespace), from_namespace(parser.module.Config, namespace)


def check_limits(settings: RunSettings, caps: TrainingCaps) -> None:
    """The server's own bounds on top of training's checks (which plan() repeats)."""
    if not settings.name or not NAME_PATTERN.match(settings.name):
        raise UserError("name: give the new model a name of letters, digits, '.', '-' or '_' "
                        "(at most 64, starting with a letter or digit)")
    if settings.max_steps < 1 or settings.max_steps > caps.max_steps:
        raise UserError(f"max_steps must be between 1 and {caps.max_steps:,} on this server, "
                        f"got {settings.max_steps}")
    for field, value, top in (("per_device_train_batch_size", settings.per_device_train_batch_size,
                               caps.max_batch_size),
                              ("gradient_accumulation_steps", settings.gradient_accumulation_steps, 8),
                              ("limit_eval", settings.limit_eval or 0, caps.max_limit_eval),
                              ("logging_steps", settings.logging_steps, 10_000),
                              ("save_steps", settings.save_steps, 10_000),
                              ("max_source_length", settings.max_source_length, 1024),
                              ("max_target_length", settings.max_target_length, 512)):
        low = 0 if field == "limit_eval" else 1
        if value < low or value > top:
            raise UserError(f"{field} must be between {low} and {top:,} on this server, got {value}")
    if settings.limit_train is not None and settings.limit_train < 1:
        raise UserError(f"limit_train must be at least 1, got {settings.limit_train}")


def check_upload(path: str | os.PathLike, caps: TrainingCaps) -> list[dict]:
    """The rows of an uploaded CSV/JSONL with `dialogue` and `summary` columns, or a refusal."""
    from summarizer.data import load_split

    path = Path(path)
    label = path.name
    if path.suffix.lower() not in UPLOAD_SUFFIXES:
        raise UserError(f"{label}: upload a .csv or .jsonl file with dialogue and summary columns")
    if not path.is_file():
        raise UserError(f"{label}: the uploaded file is gone; upload it again")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{label}: the file is empty")
    if size > caps.max_upload_bytes:
        raise UserError(f"{label}: {size / 1e6:.1f} MB is over this server's "
                        f"{caps.max_upload_bytes / 1e6:.1f} MB limit for training data")
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{label}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    _check_columns(path, label)
    try:
        examples = load_split(str(path), "train")
    except UserError as err:
        raise UserError(str(err).replace(str(path), label)) from None
    if len(examples) < MIN_UPLOAD_ROWS or len(examples) > caps.max_upload_rows:
        raise UserError(f"{label}: {len(examples):,} dialogues; training takes "
                        f"{MIN_UPLOAD_ROWS} to {caps.max_upload_rows:,}")
    rows = []
    for number, example in enumerate(examples, start=1):
        if not example.summary:
            raise UserError(f"{label}: dialogue {number} has no summary")
        if len(example.dialogue) > MAX_UPLOAD_DIALOGUE_CHARS or \
                len(example.summary) > MAX_UPLOAD_SUMMARY_CHARS:
            raise UserError(f"{label}: dialogue {number} is over {MAX_UPLOAD_DIALOGUE_CHARS:,} "
                            f"characters or its summary over {MAX_UPLOAD_SUMMARY_CHARS:,}")
        rows.append({"id": example.id, "dialogue": example.dialogue, "summary": example.summary})
    return rows


def _check_columns(path: Path, label: str) -> None:
    """Both columns named in the header (CSV) or the first row (JSONL): the usual mistake."""
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".csv":
                columns = next(csv.reader(handle), [])
            else:
                first = next((line for line in handle if line.strip()), "{}")
                row = json.loads(first)
                columns = list(row) if isinstance(row, dict) else []
    except (ValueError, csv.Error) as err:
        raise UserError(f"{label}: cannot read it ({one_line(err)})") from None
    missing = [c for c in ("dialogue", "summary") if c not in [str(x).strip() for x in columns]]
    if missing:
        raise UserError(f"{label}: no {' or '.join(missing)} column (it needs dialogue and summary)")
