"""Zero-, one- and few-shot prompts in a template (summarizer.templates), within a token budget.

The default template is the one the course experiment used, for inference and training alike:

    "Summarize the following conversation.\n\n" + dialogue + "\n\nSummary: "

A k-shot prompt puts k solved train examples (the same template followed by their reference)
before the dialogue. When the prompt is over budget, shots go first (last shot first), then the
dialogue is cut from its end; the result says what was dropped or cut.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from .data import Example
from .errors import UserError
from .templates import (BUILTIN, DEFAULT_TEMPLATE, EXPERIMENT, FLAN_SOURCE, PLACEHOLDER, Template,  # noqa: F401
                        custom_name, resolve_template, resolve_templates)

# The experiment template's two halves, for code that builds text around the dialogue itself.
INSTRUCTION, ANSWER_PREFIX = EXPERIMENT.text.split(PLACEHOLDER)
SHOT_SEPARATOR = "\n\n\n"
MAX_SHOTS = 5
# An average DialogSum dialogue is ~250 tokens; 1024 lets a one-shot and most two- or three-shot
# prompts through (the course's few-shot prompt ran to 819). FLAN-T5's relative positions accept it.
DEFAULT_MAX_PROMPT_TOKENS = 1024
SHOT_STRATEGIES = ("random", "fixed", "topic")


_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")
_CONTROL[0x7F] = None


def clean_text(text: str) -> str:
    """Text a tokenizer accepts: no lone surrogates or control characters, `\n` line ends."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL).strip()


def format_prompt(dialogue: str, template: Template = EXPERIMENT) -> str:
    """The prompt for one dialogue (training preprocessing uses it too): `Template.render`."""
    return template.render(dialogue)


def format_shot(example: Example, template: Template = EXPERIMENT) -> str:
    """A solved example: the prompt, its reference, the separator. A template that ends in a
    word (FLAN's "...dialogue?") gets a line break before the answer, as FLAN's own few-shot
    patterns put one; the experiment's ends in "Summary: " and is followed directly, as before."""
    prompt = template.render(example.dialogue)
    joiner = "" if not prompt or prompt[-1].isspace() else "\n"
    return prompt + joiner + (example.summary or "") + SHOT_SEPARATOR


@dataclass(frozen=True)
class ShotSettings:
    """How many solved examples go before the dialogue, and how they are picked."""
    shots: int = 0
    strategy: str = "random"  # random (seeded) | fixed (by id) | topic (same topic, then random)
    ids: tuple[str, ...] = ()
    seed: int = 42

    def __post_init__(self):
        if not 0 <= self.shots <= MAX_SHOTS:
            raise UserError(f"shots must be between 0 and {MAX_SHOTS}, got {self.shots}")
        if self.strategy not in SHOT_STRATEGIES:
            raise UserError(f"unknown shot strategy {self.strategy!r}; "
                            f"choose one of {', '.join(SHOT_STRATEGIES)}")
        if self.strategy == "fixed" and len(self.ids) < self.shots:
            raise UserError(f"fixed shots need {self.shots} ids, got {len(self.ids)}")


def choose_shots(pool: Sequence[Example], settings: ShotSettings, target: Example) -> list[Example]:
    """Solved examples for `target`, never `target` itself (nor a copy of its dialogue)."""
    if settings.shots == 0:
        return []
    candidates = [e for e in pool if e.summary and e.id != target.id
                  and e.dialogue.strip() != target.dialogue.strip()]
    if settings.strategy == "fixed":
        by_id = {e.id: e for e in candidates}
        missing = [i for i in settings.ids[: settings.shots] if i not in by_id]
        if missing:
            raise UserError(f"shot id(s) not in the shot pool (or the dialogue itself): "
                            f"{', '.join(missing)}")
        return [by_id[i] for i in settings.ids[: settings.shots]]
    rng = random.Random(f"{settings.seed}:{target.id}")
    chosen: list[Example] = []
    if settings.strategy == "topic" and target.topic:
        same = [e for e in candidates if e.topic == target.topic]
        chosen = rng.sample(same, min(settings.shots, len(same)))
    rest = [e for e in candidates if e not in chosen]
    chosen += rng.sample(rest, min(settings.shots - len(chosen), len(rest)))
    return chosen


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...
    def truncate(self, text: str, max_tokens: int) -> str: ...


class WordCounter:
    """Whitespace words: the budget for models without a tokenizer (the extractive baseline)."""

    def count(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[: max(0, max_tokens)])


class TokenizerCounter:
    """Counts with a Hugging Face tokenizer, special tokens included (what the encoder sees)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        if max_tokens <= 0:
            return ""
        return text[: offsets[max_tokens - 1][1]]


@dataclass
class Prompt:
    text: str
    n_tokens: int
    shot_ids: list[str] = field(default_factory=list)
    dropped_shot_ids: list[str] = field(default_factory=list)
    dialogue_truncated: bool = False
    template: str = DEFAULT_TEMPLATE  # the name of the template it was built in

    @property
    def notices(self) -> list[str]:
        notes = []
        if self.dropped_shot_ids:
            notes.append(f"{len(self.dropped_shot_ids)} shot(s) dropped to fit the token budget: "
                         f"{', '.join(self.dropped_shot_ids)}")
        if self.dialogue_truncated:
            notes.append("the dialogue was cut to fit the token budget")
        return notes


def build_prompt(dialogue: str, shots: Sequence[Example], counter: TokenCounter,
                 max_tokens: int = DEFAULT_MAX_PROMPT_TOKENS, template: Template = EXPERIMENT) -> Prompt:
    """The prompt for `dialogue` in `template` with as many of `shots` as fit in `max_tokens`."""
    if max_tokens < 16:
        raise UserError(f"the prompt token budget must be at least 16, got {max_tokens}")
    # No token is longer than this many characters in practice: cutting a huge paste here first
    # keeps tokenizing it cheap (a 1 MB paste would otherwise be tokenized in full, repeatedly).
    char_limit = max_tokens * 64
    pre_cut = len(dialogue) > char_limit
    if pre_cut:
        dialogue = dialogue[:char_limit]
    kept = list(shots)
    while True:
        text = "".join(format_shot(s, template) for s in kept) + template.render(dialogue)
        n_tokens = counter.count(text)
        if n_tokens <= max_tokens or not kept:
            break
        kept.pop()
    dropped = [s.id for s in shots[len(kept):]]
    truncated = False
    if n_tokens > max_tokens:
        overhead = counter.count(template.render(""))
        allowed = max_tokens - overhead
        cut = counter.truncate(dialogue, allowed)
        # Token boundaries can shift when the text around them changes; shrink until it fits.
        while counter.count(template.render(cut)) > max_tokens and allowed > 0:
            allowed -= max(1, (counter.count(template.render(cut)) - max_tokens))
            cut = counter.truncate(dialogue, allowed)
        text, truncated = template.render(cut), True
        n_tokens = counter.count(text)
    truncated = truncated or pre_cut
    return Prompt(text=text, n_tokens=n_tokens, shot_ids=[s.id for s in kept],
                  dropped_shot_ids=dropped, dialogue_truncated=truncated, template=template.name)
