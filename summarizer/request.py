"""One summarization request, validated once where it enters: the page, the API or the CLI.

`SummaryRequest` holds what a run needs (dialogues with their references, models, shots,
decoding, how speakers are read); building one checks every field, so the pipeline behind it
(`summarizer.pipeline`) trusts what it gets. `SummaryRequest.from_form` is the boundary for the
app and its API: text boxes and sliders in, a request or a one-line UserError out, within the
server's `LIMITS` (the controls take their ranges and defaults from them too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Sequence

from .data import Example
from .errors import UserError
from .prompts import DEFAULT_MAX_PROMPT_TOKENS, MAX_SHOTS, ShotSettings, clean_text
from .speakers import SPEAKER_MODES
from .templates import Template, resolve_templates

SHOT_MODES = ("zero-shot", "one-shot", "few-shot")


@dataclass(frozen=True)
class DecodingSettings:
    """Decoding settings, explicit so that every result can be reproduced."""
    max_new_tokens: int = 200
    min_new_tokens: int = 0  # benchmarks set it to max_new_tokens to fix the output length
    num_beams: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0  # used when sampling
    batch_size: int = 8
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    # None: the model's own generation_config.json decides (the mini models block repeated
    # 3-grams there); 0 turns blocking off; n blocks every repeat of an n-gram.
    no_repeat_ngram_size: int | None = None

    def __post_init__(self):
        checks = [(self.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
                  (0 <= self.min_new_tokens <= self.max_new_tokens, "min_new_tokens must be 0..max_new_tokens"),
                  (self.num_beams >= 1, "num_beams must be at least 1"),
                  (self.batch_size >= 1, "batch_size must be at least 1"),
                  (self.temperature > 0, "temperature must be above 0"),
                  (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
                  (self.no_repeat_ngram_size is None or self.no_repeat_ngram_size >= 0,
                   "no_repeat_ngram_size must be 0 (off) or more")]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def generate_kwargs(self) -> dict:
        kwargs = dict(max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                      num_beams=self.num_beams, do_sample=self.do_sample)
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        if self.no_repeat_ngram_size is not None:
            kwargs.update(no_repeat_ngram_size=self.no_repeat_ngram_size)
        return kwargs


DEFAULTS = DecodingSettings()  # the one set of decoding defaults: CLI, app and API alike


@dataclass(frozen=True)
class Limits:
    """What one request may ask of a shared server (two CPU cores serve everyone)."""
    dialogue_chars: int = 20_000
    reference_chars: int = 5_000
    topic_chars: int = 100
    models: int = 8
    new_tokens: int = 512
    beams: int = 8
    prompt_tokens: int = 2048
    upload_bytes: int = 2 * 1024 * 1024
    batch_rows: int = 200


LIMITS = Limits()


def clean_dialogue(text: str | None, limit: int = LIMITS.dialogue_chars) -> str:
    """The dialogue as the models will see it; refuses empty and oversized input."""
    text = clean_text(text or "")  # so a paste of control characters is empty too
    if not text:
        raise UserError("The dialogue is empty: paste a conversation (or load an example) first.")
    if len(text) > limit:
        raise UserError(f"The dialogue is {len(text):,} characters long; the limit is "
                        f"{limit:,}. Shorten it and run again.")
    return text


def parse_references(text: str | None, limit: int = LIMITS.reference_chars) -> list[str]:
    """Reference summaries from one text box: several references are separated by a blank line."""
    text = clean_text(text or "") if isinstance(text, str) else ""
    if not text:
        return []
    if len(text) > limit:
        raise UserError(f"The reference summary is {len(text):,} characters long; the limit is {limit:,}.")
    return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]


def _number(value, name: str) -> float:
    """A finite number from a form field, or a one-line refusal."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise UserError(f"{name} must be a finite number")
    return number


def _whole(value, name: str) -> int:
    return int(_number(value, name))


def shot_settings(mode: str, n_shots=2, strategy: str = "random", shot_ids: str = "", seed=42) -> ShotSettings:
    """zero-/one-/few-shot and the page's number of shots -> ShotSettings (validated there)."""
    if mode not in SHOT_MODES:
        raise UserError(f"unknown prompt mode {str(mode)[:40]!r}; choose one of {', '.join(SHOT_MODES)}")
    shots = {"zero-shot": 0, "one-shot": 1}.get(mode)
    if shots is None:
        shots = _whole(n_shots or 2, "shots")
        if not 2 <= shots <= MAX_SHOTS:
            raise UserError(f"few-shot takes 2 to {MAX_SHOTS} shots, got {shots}")
    ids = tuple(i.strip() for i in str(shot_ids or "").split(",") if i.strip())
    return ShotSettings(shots=shots, strategy=strategy or "random", ids=ids, seed=_whole(seed or 0, "seed"))


def shot_mode(shots: ShotSettings) -> str:
    """The page's name for a shot count (the inverse of `shot_settings`)."""
    return {0: "zero-shot", 1: "one-shot"}.get(shots.shots, "few-shot")


def decoding_settings(max_new_tokens=DEFAULTS.max_new_tokens, num_beams=1, do_sample: bool = False,
                      temperature: float = 1.0, top_p: float = 1.0, seed=0,
                      max_prompt_tokens=DEFAULT_MAX_PROMPT_TOKENS, batch_size: int = DEFAULTS.batch_size,
                      limits: Limits = LIMITS) -> DecodingSettings:
    """Decoding settings from the page, capped so that one request cannot hold the server for long."""
    max_new_tokens, num_beams = _whole(max_new_tokens, "max new tokens"), _whole(num_beams, "beams")
    max_prompt_tokens = _whole(max_prompt_tokens, "the prompt token budget")
    if not 1 <= max_new_tokens <= limits.new_tokens:
        raise UserError(f"max new tokens must be 1 to {limits.new_tokens}, got {max_new_tokens}")
    if not 1 <= num_beams <= limits.beams:
        raise UserError(f"beams must be 1 to {limits.beams}, got {num_beams}")
    if not 16 <= max_prompt_tokens <= limits.prompt_tokens:
        raise UserError(f"the prompt token budget must be 16 to {limits.prompt_tokens}, got {max_prompt_tokens}")
    temperature, top_p = _number(temperature, "temperature"), _number(top_p, "top-p")
    return DecodingSettings(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=bool(do_sample),
                            temperature=temperature, top_p=top_p, seed=_whole(seed or 0, "seed"),
                            batch_size=batch_size, max_prompt_tokens=max_prompt_tokens)


def model_names(models: Sequence[str] | str | None, limit: int = LIMITS.models) -> tuple[str, ...]:
    """The models asked for, each once, in order; refuses none and too many."""
    if isinstance(models, str):
        models = [models]
    names = tuple(dict.fromkeys(str(m).strip() for m in (models or [])))  # "" stays: an unknown model
    if not names:
        raise UserError("Choose at least one model to run.")
    if len(names) > limit:
        raise UserError(f"Compare at most {limit} models at once.")
    return names


@dataclass(frozen=True)
class SummaryRequest:
    """Dialogues (with their references) x models, and how to prompt and decode. Valid once built."""
    examples: tuple[Example, ...]
    models: tuple[str, ...]
    shots: ShotSettings = ShotSettings()
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    speakers: str = "auto"  # auto: names <-> #PersonN# as each model reads them; keep: as pasted
    templates: tuple[Template, ...] = ()  # empty: each model's default template

    def __post_init__(self):
        if self.speakers not in SPEAKER_MODES:
            raise UserError(f"speakers must be one of {', '.join(SPEAKER_MODES)}, got {str(self.speakers)[:40]!r}")
        if not self.examples:
            raise UserError("no dialogues to summarize")
        examples = tuple(replace(e, dialogue=clean_text(e.dialogue or "")) for e in self.examples)
        for example in examples:
            if not example.dialogue:
                raise UserError(f"empty dialogue (example {example.id!r}): paste a conversation to summarize")
        object.__setattr__(self, "examples", examples)
        object.__setattr__(self, "models", model_names(self.models, limit=10_000))
        object.__setattr__(self, "templates", tuple(resolve_templates(self.templates)))

    def check_models(self, registry) -> None:
        """Unknown model names fail before any work."""
        for name in self.models:
            registry.spec(name)

    @classmethod
    def from_form(cls, dialogue: str, reference: str = "", topic: str = "", models: Sequence[str] = (),
                  shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
                  speakers: str = "auto", templates: Sequence[Template | str] = (),
                  limits: Limits = LIMITS) -> "SummaryRequest":
        """One pasted dialogue from the page or the API, within the server's limits."""
        dialogue = clean_dialogue(dialogue if isinstance(dialogue, str) else "", limits.dialogue_chars)
        references = parse_references(reference, limits.reference_chars)
        topic = clean_text(topic if isinstance(topic, str) else "")[: limits.topic_chars] or None
        example = Example(id="input", dialogue=dialogue, references=tuple(references), topic=topic)
        return cls((example,), model_names(models, limits.models), shots, decoding or decoding_settings(),
                   speakers, tuple(templates or ()))
