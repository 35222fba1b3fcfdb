"""DialogSum examples for the Compare tab and the train split that one- and few-shot prompts use."""

from __future__ import annotations

import html
import random
import threading
from dataclasses import dataclass

from ..data import Example, load_split, resolve_source
from ..errors import DataError, UserError
from .inputs import EXAMPLE_SPLITS


@dataclass
class PickedExample:
    dialogue: str
    reference: str  # references separated by blank lines, as the reference box takes them
    topic: str
    index: int
    info: str  # markdown, escaped


class ExampleLibrary:
    """DialogSum splits of the server's data source, each loaded once (owns them and their lock)."""

    def __init__(self, data_source: str | None = None):
        self.data_source = resolve_source(data_source)
        self._splits: dict[str, list[Example]] = {}
        self._split_lock = threading.Lock()

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

    def pick(self, split: str = "validation", how: str = "random",
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
