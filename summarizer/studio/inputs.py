"""What a user may send the Studio: the server's limits (defined once, in summarizer.request) under
the names the page uses, and the checks for uploads."""

from __future__ import annotations

import re
from pathlib import Path

from ..request import (LIMITS, SHOT_MODES, clean_dialogue, decoding_settings, parse_references, shot_mode,
                       shot_settings)

MAX_DIALOGUE_CHARS = LIMITS.dialogue_chars
MAX_REFERENCE_CHARS = LIMITS.reference_chars
MAX_TOPIC_CHARS = LIMITS.topic_chars
MAX_UPLOAD_BYTES = LIMITS.upload_bytes
MAX_BATCH_ROWS = LIMITS.batch_rows
MAX_NEW_TOKENS_LIMIT = LIMITS.new_tokens
MAX_BEAMS_LIMIT = LIMITS.beams
MAX_PROMPT_TOKENS_LIMIT = LIMITS.prompt_tokens
UPLOAD_SUFFIXES = (".csv", ".jsonl")

EXAMPLE_SPLITS = ("validation", "test")
RESULTS_ENV = "STUDIO_RESULTS"
# The miniature experiment's evaluation stage writes it: every row measured by this project.
DEFAULT_RESULTS = Path(__file__).resolve().parents[2] / "assets" / "mini" / "results.json"

__all__ = ["DEFAULT_RESULTS", "EXAMPLE_SPLITS", "MAX_BATCH_ROWS", "MAX_BEAMS_LIMIT", "MAX_DIALOGUE_CHARS",
           "MAX_NEW_TOKENS_LIMIT", "MAX_PROMPT_TOKENS_LIMIT", "MAX_REFERENCE_CHARS", "MAX_TOPIC_CHARS",
           "MAX_UPLOAD_BYTES", "RESULTS_ENV", "SHOT_MODES", "UPLOAD_SUFFIXES", "clean_dialogue",
           "decoding_settings", "parse_references", "safe_name", "shorten", "shot_mode", "shot_settings"]


def safe_name(name: str) -> str:
    """A file name fit to show: letters, digits, dot, dash and underscore only."""
    return re.sub(r"[^\w.\-]+", "_", name)[:80] or "upload"


def shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
