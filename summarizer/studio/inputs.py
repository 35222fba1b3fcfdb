"""What a user may send the Studio: limits, and the checks that turn a bad value into a UserError."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from ..generation import DecodingSettings
from ..prompts import DEFAULT_MAX_PROMPT_TOKENS, MAX_SHOTS, ShotSettings, clean_text

# One shared CPU box serves everyone, so inputs are bounded.
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
# The miniature experiment's evaluation stage writes it: every row measured by this project.
DEFAULT_RESULTS = Path(__file__).resolve().parents[2] / "assets" / "mini" / "results.json"


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


def shot_mode(shots: ShotSettings) -> str:
    """The UI's name for a shot count (the inverse of `shot_settings`)."""
    return {0: "zero-shot", 1: "one-shot"}.get(shots.shots, "few-shot")


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


def safe_name(name: str) -> str:
    """A file name fit to show: letters, digits, dot, dash and underscore only."""
    return re.sub(r"[^\w.\-]+", "_", name)[:80] or "upload"


def shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
