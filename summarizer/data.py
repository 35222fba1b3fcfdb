"""DialogSum and users' own dialogues, as one `Example` type whatever the layout.

Three sources:
- a hub dataset id (default `knkarthick/dialogsum`, loaded with `datasets.load_dataset`);
- a local folder: the authors' release (`dialogsum.{train,dev,test}.jsonl`) or the hub's files
  (`train/validation/test` as .csv or .jsonl);
- one CSV or JSONL file with a `dialogue` column and optional `summary`, `id`, `topic`.

The hub's test split repeats each dialogue once per reference; the release keeps them in
`summary1..3`. Both become one Example holding all references.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import DataError, one_line

DEFAULT_DATA = "knkarthick/dialogsum"
DATA_ENV = "DIALOGSUM_PATH"
SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"dev": "validation", "val": "validation", "valid": "validation"}
_RELEASE_NAMES = {"train": "dialogsum.train.jsonl", "validation": "dialogsum.dev.jsonl",
                  "test": "dialogsum.test.jsonl"}
_REFERENCE_COLUMNS = ("summary", "summary1", "summary2", "summary3")


@dataclass(frozen=True)
class Example:
    id: str
    dialogue: str
    references: tuple[str, ...] = ()
    topic: str | None = None

    @property
    def summary(self) -> str | None:
        """The first reference: what a shot shows as the solved answer."""
        return self.references[0] if self.references else None


def resolve_source(data: str | None = None) -> str:
    """--data, else $DIALOGSUM_PATH, else the hub id."""
    return data or settings.text(DATA_ENV)


def normalize_split(split: str) -> str:
    name = _SPLIT_ALIASES.get(split.lower(), split.lower())
    if name not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} (or dev)")
    return name


def load_split(source: str | None, split: str, limit: int | None = None) -> list[Example]:
    """The examples of one split, in file order, each dialogue once with all its references."""
    source = resolve_source(source)
    split = normalize_split(split)
    path = Path(source).expanduser()
    if path.is_dir():
        examples = _load_folder(path, split)
    elif path.is_file():
        examples = _load_file(path)
    elif _looks_like_path(source):
        raise DataError(f"data not found: {source} (no such file or folder)")
    else:
        examples = _load_hub(source, split)
    if limit is not None:
        examples = examples[: max(0, limit)]
    return examples


def _looks_like_path(source: str) -> bool:
    # Hub ids are "owner/name"; anything else with a slash, dot-prefix or extension is a path.
    return (source.startswith((".", "/", "~")) or source.count("/") != 1
            or source.lower().endswith((".csv", ".jsonl", ".json")))


def _load_folder(folder: Path, split: str) -> list[Example]:
    release = folder / _RELEASE_NAMES[split]
    if release.is_file():
        return _load_file(release)
    for name in (split, "dev" if split == "validation" else split):
        for ext in (".jsonl", ".csv", ".json"):
            candidate = folder / f"{name}{ext}"
            if candidate.is_file():
                return _load_file(candidate)
    raise DataError(f"no {split} split in {folder}: expected {_RELEASE_NAMES[split]} "
                    f"or {split}.jsonl / {split}.csv")


def _load_file(path: Path) -> list[Example]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = _read_jsonl(path)
    elif suffix == ".csv":
        rows = _read_csv(path)
    else:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; use .csv or .jsonl")
    return _rows_to_examples(rows, path)


def _read_jsonl(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def _read_csv(path: Path):
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise DataError(f"{path}: empty CSV file (no header row)")
            for row in reader:
                yield reader.line_num, row
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise DataError(f"{path}: malformed CSV ({err})") from None


def _rows_to_examples(rows, path: Path) -> list[Example]:
    """Rows in release, hub or user layout; repeated dialogues (hub test split) are merged."""
    by_dialogue: dict[str, dict] = {}
    for number, row in rows:
        dialogue = row.get("dialogue")
        if not isinstance(dialogue, str) or not dialogue.strip():
            what = "missing" if dialogue is None else "empty or not text"
            raise DataError(f"{path}:{number}: 'dialogue' is {what}")
        references = []
        for column in _REFERENCE_COLUMNS:
            value = row.get(column)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise DataError(f"{path}:{number}: '{column}' must be text")
            references.append(value.strip())
        raw_id = row.get("fname", row.get("id"))
        row_id = str(raw_id) if raw_id not in (None, "") else f"row-{number}"
        topic = row.get("topic") or row.get("topic1") or None
        entry = by_dialogue.get(dialogue)
        if entry is None:
            by_dialogue[dialogue] = {"ids": [row_id], "references": references, "topic": topic}
        else:
            entry["ids"].append(row_id)
            entry["references"].extend(r for r in references if r not in entry["references"])
    return [Example(id=_group_id(entry["ids"]), dialogue=dialogue,
                    references=tuple(entry["references"]), topic=entry["topic"])
            for dialogue, entry in by_dialogue.items()]


def _group_id(ids: list[str]) -> str:
    # The hub writes the k-th reference of test_7 as test_7_k (k = 1, 2, 3): one dialogue, one id.
    # Anything else (a dialogue that merely occurs twice) keeps its first id.
    if len(ids) > 1:
        parts = [re.fullmatch(r"(.+)_(\d+)", i) for i in ids]
        if all(parts) and len({m.group(1) for m in parts}) == 1 \
                and sorted(int(m.group(2)) for m in parts) == list(range(1, len(ids) + 1)):
            return parts[0].group(1)
    return ids[0]


def _load_hub(dataset_id: str, split: str) -> list[Example]:
    try:
        import datasets
        rows = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:  # offline, unknown repo, missing split: all one message to the user
        raise DataError(f"cannot load {dataset_id!r} split {split} from the hub ({one_line(err)}); "
                        f"set --data or ${DATA_ENV} to a local DialogSum folder") from None
    return _rows_to_examples(enumerate(rows, start=1), Path(dataset_id))
