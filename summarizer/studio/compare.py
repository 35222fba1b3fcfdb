"""Compare models on one dialogue: one `summarize` call, snapshots while the summaries stream in."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence, Union

from .. import faithfulness, pipeline
from ..errors import UserError, one_line
from ..generation import DecodingSettings, Result
from ..prompts import ShotSettings
from ..request import SummaryRequest
from ..scoring import Scores
from ..votes import Ballot
from ..votes.store import LABELS
from .examples import ExampleLibrary
from .models import ModelCatalog
from .votes import Voting

log = logging.getLogger(__name__)

NO_REFERENCE_NOTE = ("No reference summary: ROUGE is not computed. Paste a reference summary "
                     "(or load a DialogSum example) to score the summaries.")
BLIND_NOTE = ("Blind: the cards are shuffled and model names, ROUGE, timings and prompts stay hidden "
              "until you vote.")
VERDICT_CHOICES = (("All equally good", "tie"), ("All bad", "bad"))
HIDDEN_ERROR = "could not run (the reason is shown after the vote)"
MAX_TEMPLATES = 3  # a comparison's grid: rows models, columns templates


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
    template: str = ""  # the prompt template's name
    in_grid: bool = False  # one of several templates: the card is a cell of a models x templates grid
    wall_seconds: float = 0.0  # including loading the model on first use

    @property
    def error(self) -> str | None:
        return self.result.error if self.result else None

    @property
    def name(self) -> str:
        """The model, and the template when it is one of several compared."""
        return f"{self.model} [{self.template}]" if self.in_grid else self.model

    def to_dict(self, hidden: bool = False) -> dict:
        """The card as data; `hidden` keeps only what a blind vote may see (no model, no scores)."""
        result = self.result
        if hidden:
            return {"card": self.label, "state": self.state,
                    "summary": result.summary if result else (self.text or None),
                    "error": HIDDEN_ERROR if self.error else None}
        prompt = result.prompt if result else None
        return {"card": self.label, "model": self.model, "kind": self.kind, "template": self.template,
                "state": self.state,
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
    templates: list[str] = field(default_factory=list)  # the grid's columns (one: no grid)

    @property
    def grid(self) -> bool:
        return len(self.templates) > 1

    @property
    def scored(self) -> bool:
        return bool(self.references)

    @property
    def revealed(self) -> bool:
        """Model names and scores may be shown: not blind, or voted on."""
        return not self.blind or self.ballot is not None

    def vote_choices(self) -> list[tuple[str, str]]:
        """(label, value) for each card that can be picked, then the two verdicts."""
        cards = [(c.label if not self.revealed else f"{c.label} · {c.name}", c.label)
                 for c in self.cards if c.state == "done"]
        return cards + list(VERDICT_CHOICES)

    def to_dict(self) -> dict:
        hidden = not self.revealed
        return {"done": self.done, "blind": self.blind, "comparison_id": self.comparison_id,
                "vote_choices": [value for _, value in self.vote_choices()] if self.comparison_id else [],
                "references": self.references, "notes": self.notes, "rouge_computed": self.scored,
                "templates": self.templates,
                "models": [c.to_dict(hidden) for c in self.cards]}


# What the worker thread tells the snapshot loop, in order: each model Started, text Streamed
# while it decodes, each result Finished (or the whole run Failed), then Ended.
@dataclass(frozen=True)
class Started:
    model: str


@dataclass(frozen=True)
class Streamed:
    model: str
    template: str
    text: str


@dataclass(frozen=True)
class Finished:
    scored: pipeline.Scored
    wall_seconds: float


@dataclass(frozen=True)
class Failed:
    error: UserError


@dataclass(frozen=True)
class Ended:
    pass


Event = Union[Started, Streamed, Finished, Failed, Ended]


class _Cancelled(Exception):
    """Raised from the streaming callback to stop generation when the caller has gone."""


GRID_NOTE = ("Rows: models; columns: templates. A grid is shown with its names (not blind), and it is "
             "not voted on: compare one template to vote.")
NO_GRID_VOTE = ("Voting compares models under one template: run one template to vote "
                "(the grid compares templates).")


class Comparisons:
    """Compare models on one dialogue: one pipeline run, snapshots while the summaries stream in.

    Owns nothing mutable of its own: the models, examples (the shot pool) and votes are the
    services it is given.
    """

    def __init__(self, models: ModelCatalog, examples: ExampleLibrary, voting: Voting):
        self.models, self.examples, self.voting = models, examples, voting

    def compare(self, dialogue: str, reference: str = "", models: Sequence[str] = (),
                shots: ShotSettings = ShotSettings(), decoding: DecodingSettings | None = None,
                topic: str = "", min_interval: float = 0.2, blind: bool = False,
                speakers: str = "auto", prompts: Sequence[str] = ()) -> Iterator[CompareView]:
        """Summaries of one pasted dialogue by each chosen model in each of `prompts` (template
        names or texts; none: each model's own), as snapshots (see `run`)."""
        request = SummaryRequest.from_form(dialogue, reference, topic, models, shots, decoding, speakers,
                                           prompts)
        return self.run(request, blind=blind, min_interval=min_interval)

    def compare_all(self, *args, **kwargs) -> CompareView:
        """The final snapshot of `compare` (for callers that do not stream)."""
        view = None
        for view in self.compare(*args, **kwargs):
            pass
        return view

    def run(self, request: SummaryRequest, blind: bool = False, min_interval: float = 0.2) -> Iterator[CompareView]:
        """Snapshots of `request` (one dialogue) while it runs; the last has `done=True`.

        All models go through one pipeline run, so a base model and its LoRA adapters decode in
        one batch (a card's latency is that of the batch that produced it); a model that cannot
        load ends with its reason on its card and the others still run. The last snapshot has
        ROUGE and support per card and, with two or more summaries, a `comparison_id` to vote
        on. `blind` shuffles the cards and keeps names and scores hidden until the vote.
        """
        request.check_models(self.models.registry)
        if len(request.templates) > MAX_TEMPLATES:
            raise UserError(f"Compare at most {MAX_TEMPLATES} templates at once.")
        if len(request.models) * max(1, len(request.templates)) > len(LABELS):
            raise UserError(f"Compare at most {len(LABELS)} summaries at once (models x templates).")
        pool = self.examples.shot_pool() if request.shots.shots else None
        view = self._open_view(request, blind)
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        worker = threading.Thread(target=self._work, args=(request, pool, events, stop),
                                  name="studio-compare", daemon=True)
        worker.start()
        try:
            yield view
            yield from self._follow(view, events, min_interval)
            view.done = True
            if view.grid:
                view.vote_note = NO_GRID_VOTE
            else:
                self.voting.offer_vote(view, request.examples[0].dialogue, request.shots, request.decoding)
            yield view
        finally:
            stop.set()

    def _open_view(self, request: SummaryRequest, blind: bool) -> CompareView:
        """Cards model by model, template by template (a grid's rows and columns); shuffled when blind."""
        registry = self.models.registry
        templates = [t.name for t in request.templates]
        grid = len(templates) > 1
        if grid and blind:  # a blind vote compares models under one template: the grid shows names
            blind = False
        shown = [(name, template) for name in request.models
                 for template in (templates or [registry.spec(name).default_template.name])]
        if blind:
            random.SystemRandom().shuffle(shown)  # not predictable from the outside
        references = list(request.examples[0].references)
        cards = [Card(n, registry.spec(n).kind, LABELS[i], template=t, in_grid=grid)
                 for i, (n, t) in enumerate(shown)]
        view = CompareView(cards, references, blind=blind, templates=templates if grid else [])
        if grid:
            view.notes.append(GRID_NOTE)
        if blind:
            view.notes.append(BLIND_NOTE)
        if not references:
            view.notes.append(NO_REFERENCE_NOTE)
        if request.decoding.num_beams > 1:
            view.notes.append("Beam search does not stream: each summary appears when it is finished.")
        return view

    def _work(self, request: SummaryRequest, pool, events: queue.Queue, stop: threading.Event) -> None:
        """The worker thread: one pipeline run, reported as events."""
        def on_partial(model, template, example_id, text):
            if stop.is_set():
                raise _Cancelled("cancelled")
            events.put(Streamed(model, template, text))

        try:
            for name in request.models:
                events.put(Started(name))
            started = time.perf_counter()
            scored = pipeline.run(self.models.registry, request, pool, on_template_partial=on_partial)
            wall = time.perf_counter() - started
            for item in scored:
                events.put(Finished(item, item.result.seconds if item.result.summary else wall))
        except UserError as err:
            events.put(Failed(err))
        except _Cancelled:
            pass
        except Exception as err:  # unforeseen: one line for the user, the traceback in the log
            log.exception("comparison failed")
            events.put(Failed(UserError(f"the comparison failed: {one_line(err)}")))
        finally:
            events.put(Ended())

    def _follow(self, view: CompareView, events: queue.Queue, min_interval: float) -> Iterator[CompareView]:
        """Apply the worker's events to the view; a snapshot at most every `min_interval` s."""
        cards = {(c.model, c.template): c for c in view.cards}
        last, dirty = time.monotonic(), False
        while True:
            try:
                event = events.get(timeout=max(min_interval, 0.05))
            except queue.Empty:
                event = None
            if isinstance(event, Ended):
                return
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, Started):
                for card in view.cards:
                    if card.model == event.model:
                        card.state = "running"
            elif isinstance(event, Streamed):
                cards[event.model, event.template].text = event.text
            elif isinstance(event, Finished):
                result = event.scored.result
                result.error = self.models.without_server_paths(result.error)
                _finish_card(cards[result.model, result.template], event.scored, event.wall_seconds)
            dirty = dirty or event is not None
            if dirty and time.monotonic() - last >= min_interval:
                yield view
                last, dirty = time.monotonic(), False


def _finish_card(card: Card, scored: pipeline.Scored, wall: float) -> None:
    result = scored.result
    card.result, card.wall_seconds = result, wall
    if result.error or scored.scores is None:
        card.state, card.text = "error", ""
        return
    card.state, card.text = "done", result.summary or ""
    scores: Scores = scored.scores
    card.faithfulness, card.scores, card.shared = scores.faithfulness, scores.rouge, scores.shared
