"""The labelled set of real summary errors (assets/faithfulness/labels.jsonl), joined with its text.

The set commits no dialogue or summary text: each row names a DialogSum test dialogue, the system
that wrote the summary, the sentence's character offsets in that summary, the summary's SHA-256,
and the label read by hand (assets/faithfulness/README.md is the labelling guide). The text comes
back from three places beside the checkout:

- the dialogues: the DialogSum release folder (`../shared/data/dialogsum`, or --data);
- BART-large's summaries: `Baseline/test_output.txt` of the DialogSum authors' repository
  (github.com/cylnlp/dialogsum), saved by the user; line N is test_N;
- the project's mini models' summaries: the CSV written by
  `python -m summarizer evaluate --models mini-instruct,mini-lora,mini-prompt
  --registry assets/mini/models.toml --split test --limit 160 --data ../shared/data/dialogsum
  --output <csv>` (greedy, deterministic).

A summary whose hash differs from the one labelled (a model that drifted) is left out and counted,
never silently re-labelled.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import settings

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "assets" / "faithfulness" / "labels.jsonl"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dialogsum"
CACHE = Path(settings.text("DIALOGSUM_STUDIO_CACHE") or Path.home() / ".cache" / "dialogsum-studio")
DEFAULT_BART = CACHE / "bart-large-test_output.txt"
DEFAULT_MINI = CACHE / "mini-test160.csv"
TYPES = ("invented", "who", "particular", "negation", "other")
MINI_COMMAND = ("python -m summarizer evaluate --models mini-instruct,mini-lora,mini-prompt "
                "--registry assets/mini/models.toml --split test --limit 160 --data {data} --output {out}")


@dataclass(frozen=True)
class Labelled:
    id: str          # DialogSum dialogue id (test_N)
    system: str      # bart-large, mini-instruct, mini-lora, mini-prompt
    dialogue: str
    summary: str
    start: int       # the sentence's offsets in `summary`
    end: int
    wrong: bool
    type: str | None  # one of TYPES when wrong

    @property
    def sentence(self) -> str:
        return self.summary[self.start:self.end]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clean_bart(line: str) -> str:
    """BART's line as labelled: its output file starts most lines with a doubled '#'
    ("##Person2# got ..."), a tokenisation artefact, dropped here."""
    return re.sub(r"^#(?=#Person\d#)", "", line.strip())


def read_bart(path: Path) -> dict[str, str]:
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    return {f"test_{number}": clean_bart(line) for number, line in enumerate(lines) if line.strip()}


def read_mini(path: Path) -> dict[tuple[str, str], str]:
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return {(row["model"], row["id"]): row["summary"] for row in csv.DictReader(handle)}


def read_dialogues(data: Path) -> dict[str, str]:
    path = Path(data) / "dialogsum.test.jsonl"
    with path.open(encoding="utf-8") as handle:
        return {row["fname"]: row["dialogue"] for row in map(json.loads, handle)}


def read_labels(path: Path = LABELS) -> list[dict]:
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load(data: Path = DEFAULT_DATA, bart: Path | None = DEFAULT_BART, mini: Path | None = DEFAULT_MINI,
         labels: Path = LABELS) -> tuple[list[Labelled], dict[str, int]]:
    """The labelled sentences whose text is at hand, and counts of those left out and why
    ("no text": its source file is absent; "drifted": the summary's hash differs)."""
    dialogues = read_dialogues(data)
    bart_text = read_bart(bart) if bart and Path(bart).exists() else {}
    mini_text = read_mini(mini) if mini and Path(mini).exists() else {}
    rows, skipped = [], {"no text": 0, "drifted": 0}
    for label in read_labels(labels):
        if label["system"] == "bart-large":
            summary = bart_text.get(label["id"])
        else:
            summary = mini_text.get((label["system"], label["id"]))
        if summary is None:
            skipped["no text"] += 1
            continue
        if sha256(summary) != label["summary_sha256"]:
            skipped["drifted"] += 1
            continue
        rows.append(Labelled(label["id"], label["system"], dialogues[label["id"]], summary, label["start"],
                             label["end"], label["label"] == "wrong", label.get("type")))
    return rows, skipped
