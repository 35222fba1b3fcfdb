"""Compare models on one dialogue: one `summarize` call, snapshots while the summaries stream in."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .. import faithfulness, rouge
from ..data import Example
from ..errors import UserError, one_line
from ..generation import DecodingSettings, Result, summarize
from ..prompts import ShotSettings
from ..speakers import SPEAKER_MODES
from ..votes import Ballot
from ..votes.store import LABELS
from .inputs import MAX_TOPIC_CHARS, clean_dialogue, decoding_settings, parse_references

log = logging.getLogger(__name__)

NO_REFERENCE_NOTE = ("No reference summary: ROUGE is not computed. Paste a reference summary "
                     "(or load a DialogSum example) to score the summaries.")
BLIND_NOTE = ("Blind: the cards are shuffled and model names, ROUGE, timings and prompts stay hidden "
              "until you vote.")
VERDICT_CHOICES = (("All equally good", "tie"), ("All bad", "bad"))
HIDDEN_ERROR = "could not run (the reason is shown after the vote)"


@dataclass
class Card:
    """One model's column in the comparison."""
    model: str
    kind: str = ""
    label: str = ""  # A, B, ... in display order
    state: str = "waiting"  # waiting | running | done | error
    text: str = ""  # the summary so far (streaming) or final
    result: Result | None = None
    scores: dict[str, float] | None = None
    shared: set[str] = field(default_factory=set)
    faithfulness: faithfulness.Report | None = None  # what the dialogue does not support
    wall_seconds: float = 0.0  # including loading the model on first use

    @property
    def error(self) -> str | None:
        return self.result.error if self.result else None

    def to_dict(self, hidden: bool = False) -> dict:
        """The card as data; `hidden` keeps only what a blind vote may see (no model, no scores)."""
        result = self.result
        if hidden:
            return {"card": self.label, "state": self.state,
                    "summary": result.summary if result else (self.text or None),
                    "error": HIDDEN_ERROR if self.error else None}
        prompt = result.prompt if result else None
        return {"card": self.label, "model": self.model, "kind": self.kind, "state": self.state,
                "summary": result.summary if result else (self.text or None),
                "error": self.error, "rouge": self.scores,
                "seconds": round(result.seconds, 4) if result else None,
                "wall_seconds": round(self.wall_seconds, 4),
                "input_tokens": result.input_tokens if result else None,
                "output_tokens": result.output_tokens if result else None,
                "prompt": prompt.text if prompt else None,
                "shot_ids": list(prompt.shot_ids) if prompt else [],
                "notices": list(prompt.notices) if prompt else [],
                "shared_words": sorted(self.shared),
                "raw_summary": result.raw_summary if result else None,
                "speakers": list(result.speakers) if result else [],
                "speaker_format": result.speaker_format if result else "",
                "speaker_mapping": dict(result.speaker_mapping) if result else {},
                "speaker_note": result.speaker_note if result else "",
                "support": round(self.faithfulness.support, 4) if self.faithfulness else None,
                "unsupported": [s.to_dict() for s in self.faithfulness.unsupported] if self.faithfulness else []}


@dataclass
class CompareView:
    """A snapshot of a comparison: the cards so far and notes for the whole run."""
    cards: list[Card]  # in display order (shuffled when blind)
    references: list[str]
    notes: list[str] = field(default_factory=list)
    done: bool = False
    blind: bool = False
    comparison_id: str | None = None  # set when the finished comparison can be voted on
    vote_note: str = ""  # why it cannot, when it cannot
    ballot: Ballot | None = None  # the vote cast on it, once there is one

    @property
    def scored(self) -> bool:
        return bool(self.references)

    @property
    def revealed(self) -> bool:
        """Model names and scores may be shown: not blind, or voted on."""
        return not self.blind or self.ballot is not None

    def vote_choices(self) -> list[tuple[str, str]]:
        """(label, value) for each card that can be picked, then the two verdicts."""
        cards = [(c.label if not self.revealed else f"{c.label} · {c.model}", c.label)
                 for c in self.cards if c.state == "done"]
        return cards + list(VERDICT_CHOICES)

    def to_dict(self) -> dict:
        hidden = not self.revealed
        return {"done": self.done, "blind": self.blind, "comparison_id": self.comparison_id,
                "vote_choices": [value for _, value in self.vote_choices()] if self.comparison_id else [],
                "references": self.references, "notes": self.notes, "rouge_computed": self.scored,
                "models": [c.to_dict(hidden) for c in self.cards]}


class _Cancelled(Exception):
    """Raised from the streaming callback to stop generation when the caller has gone."""


class CompareMixin:
    """Needs `self.registry`, `self.shot_pool()` and `self.offer_vote()` (Studio)."""

    def compare(self, dialogue: str, reference: str = "", models: Sequence[str] = (),
                shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
                topic: str = "", min_interval: float = 0.2, blind: bool = False,
                speakers: str = "auto") -> Iterator[CompareView]:
        """Summaries of one dialogue by each chosen model, as snapshots while they stream in.

        All models go through one `summarize` call, so the base model and its LoRA adapters
        decode in one batch and other checkpoints decode alongside (a card's latency is that of
        the batch that produced it); a model that cannot load ends with its reason on its card
        and the others still run. The last snapshot has `done=True`, ROUGE against the
        reference(s) when there are any, and the shared words; with two or more summaries it is
        recorded for a vote (`comparison_id`). `blind` shuffles the cards and keeps names and
        scores out of the view's renderings until a vote is cast. `speakers`: "auto" maps a
        chat's names to the tags a DialogSum-trained model knows and back (the card shows how),
        "keep" sends the text as pasted.
        """
        if speakers not in SPEAKER_MODES:
            raise UserError(f"speakers must be one of {', '.join(SPEAKER_MODES)}, got {speakers!r}")
        dialogue = clean_dialogue(dialogue)
        references = parse_references(reference)
        topic = (topic or "").strip()[:MAX_TOPIC_CHARS] or None
        models = list(dict.fromkeys(models or []))
        if not models:
            raise UserError("Choose at least one model to run.")
        if len(models) > len(LABELS):
            raise UserError(f"Compare at most {len(LABELS)} models at once.")
        for name in models:
            self.registry.spec(name)  # unknown names fail before any work
        decoding = decoding or decoding_settings()
        pool = self.shot_pool() if shots.shots else None
        example = Example(id="input", dialogue=dialogue, references=tuple(references), topic=topic)

        shown = list(models)
        if blind:
            random.SystemRandom().shuffle(shown)  # not predictable from the outside
        view = CompareView([Card(n, self.registry.spec(n).kind, LABELS[i]) for i, n in enumerate(shown)],
                           references, blind=blind)
        if blind:
            view.notes.append(BLIND_NOTE)
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
                                    shot_pool=pool, on_partial=on_partial, speakers=speakers)
                wall = time.perf_counter() - started
                for result in results:
                    events.put(("done", result.model, (result, result.seconds if result.summary else wall)))
            except UserError as err:
                events.put(("fail", None, err))
            except Exception as err:  # unforeseen: one line for the user, the traceback in the log
                log.exception("comparison failed")
                events.put(("fail", None, UserError(f"the comparison failed: {one_line(err)}")))
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
                    result, wall = payload
                    result.error = self.without_server_paths(result.error)
                    _finish_card(cards[name], result, wall, references, dialogue)
                    dirty = True
                if dirty and time.monotonic() - last >= min_interval:
                    yield view
                    last, dirty = time.monotonic(), False
            view.done = True
            self.offer_vote(view, dialogue, shots, decoding)
            yield view
        finally:
            stop.set()

    def compare_all(self, *args, **kwargs) -> CompareView:
        """The final snapshot of `compare` (for callers that do not stream)."""
        view = None
        for view in self.compare(*args, **kwargs):
            pass
        return view


def _finish_card(card: Card, result: Result, wall: float, references: list[str], dialogue: str) -> None:
    card.result, card.wall_seconds = result, wall
    if result.error:
        card.state, card.text = "error", ""
        return
    card.state, card.text = "done", result.summary or ""
    card.faithfulness = faithfulness.check(dialogue, card.text)  # needs no reference
    if references:
        card.scores = rouge.score(card.text, references)
        card.shared = rouge.shared_words(card.text, references)
