"""Votes as files: JSONL (one vote a line, its cards nested) or CSV (one row per card shown).

Exports carry what the leaderboard needs and what the voter agreed to share: never the hashed
client address, and the dialogue only when it was shared with the vote.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from typing import IO, Sequence

from ..csv_cells import spreadsheet_safe
from .store import ROUGE_COLUMNS, Ballot

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ["vote_id", "time", "comparison_id", "blind", "shot_mode", "has_reference", "dialogue_sha256",
               "verdict", "card", "model", "kind", "ok", "picked", "summary", *ROUGE_COLUMNS, "support",
               "dialogue"]


def record(ballot: Ballot) -> dict:
    shown = ballot.comparison
    return {"vote_id": ballot.id, "time": _iso(ballot.created), "comparison_id": shown.id,
            "compared_at": _iso(shown.created), "blind": shown.blind, "shot_mode": shown.shot_mode,
            "settings": shown.settings, "has_reference": shown.has_reference,
            "dialogue_sha256": shown.dialogue_sha256, "dialogue": ballot.dialogue,
            "verdict": ballot.verdict, "card": ballot.winner_label, "model": ballot.winner,
            "cards": [c.to_dict() for c in shown.cards]}


def write(ballots: Sequence[Ballot], handle: IO[str], fmt: str = "jsonl") -> int:
    """Write every ballot to `handle` in `fmt`; the number of votes written."""
    if fmt == "jsonl":
        for ballot in ballots:
            handle.write(json.dumps(record(ballot), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for ballot in ballots:
            shown = ballot.comparison
            for card in shown.cards:
                row = {"vote_id": ballot.id, "time": _iso(ballot.created), "comparison_id": shown.id,
                       "blind": shown.blind, "shot_mode": shown.shot_mode, "has_reference": shown.has_reference,
                       "dialogue_sha256": shown.dialogue_sha256, "verdict": ballot.verdict, "card": card.label,
                       "model": card.model, "kind": card.kind, "ok": card.ok,
                       "picked": card.label == ballot.winner_label, "summary": card.summary,
                       **{m: (card.rouge or {}).get(m) for m in ROUGE_COLUMNS}, "support": card.support,
                       "dialogue": ballot.dialogue}
                writer.writerow({k: "" if v is None else spreadsheet_safe(v) for k, v in row.items()})
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return len(ballots)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")
