"""Votes on finished comparisons: offer one, take one, and the leaderboard they make.

Votes attach to the compare path: when a comparison finishes with at least two summaries, what
was shown is recorded in the vote store and the view gets the comparison id a vote must name.
Nothing here runs a model again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from ..errors import UserError, one_line
from ..generation import DecodingSettings
from ..prompts import ShotSettings
from ..votes import Ballot, ShownCard, VoteStore, dialogue_digest
from ..votes.leaderboard import Leaderboard, compute
from ..votes.sync import VoteSync, start_from_env
from .inputs import clean_dialogue, shot_mode

log = logging.getLogger(__name__)

VOTE_NEEDS_TWO = "Voting needs at least two summaries: compare two or more models that can run."


class Voting:
    """Votes on finished comparisons and the leaderboard they make. Owns the vote store, its
    hub copy and the cached boards (with their lock)."""

    def __init__(self, store: VoteStore):
        self.store = store
        self.sync: VoteSync | None = None
        self._boards: dict = {}  # (filters) -> (last vote id, Leaderboard)
        self._board_lock = threading.Lock()

    def start_sync(self) -> VoteSync | None:
        """With $STUDIO_VOTES_REPO set, copy the votes to that hub dataset in the background."""
        if self.sync is None:
            self.sync = start_from_env(self.store)
        return self.sync

    def offer_vote(self, view, dialogue: str, shots: ShotSettings, decoding: DecodingSettings) -> None:
        """Record a finished comparison (a compare.CompareView) so that it can be voted on; sets
        `view.comparison_id`."""
        if sum(c.state == "done" for c in view.cards) < 2:
            view.vote_note = VOTE_NEEDS_TWO
            return
        cards = [ShownCard(label=c.label, model=c.model, kind=c.kind, ok=c.state == "done",
                           summary=c.text if c.state == "done" else None, rouge=c.scores,
                           support=c.faithfulness.support if c.faithfulness else None)
                 for c in view.cards]
        settings = {"shots": {"shots": shots.shots, "strategy": shots.strategy, "ids": list(shots.ids),
                              "seed": shots.seed},
                    "decoding": {k: getattr(decoding, k) for k in decoding.__dataclass_fields__}}
        try:
            view.comparison_id = self.store.record_comparison(
                cards, blind=view.blind, shot_mode=shot_mode(shots), settings=settings,
                dialogue_sha256=dialogue_digest(dialogue), has_reference=bool(view.references))
        except (sqlite3.Error, OSError) as err:  # the summaries still show; only the vote is lost
            log.exception("could not record the comparison for voting")
            view.vote_note = f"Voting is unavailable right now ({one_line(err)})."

    def vote(self, comparison_id: str, choice: str, client: str | None = None,
             share_dialogue: bool = False, dialogue: str | None = "") -> Ballot:
        """Store a vote on a finished comparison (see VoteStore.cast_vote), or raise VoteRefused.

        With `share_dialogue`, `dialogue` is stored with the vote, provided it is the one compared.
        """
        shared = None
        if share_dialogue:
            try:
                shared = clean_dialogue(dialogue)
            except UserError as err:
                raise UserError(f"Cannot share the dialogue: {err}") from None
        try:
            return self.store.cast_vote(comparison_id, choice, client, dialogue=shared)
        except sqlite3.Error as err:
            log.exception("could not store a vote")
            raise UserError(f"The vote could not be stored ({one_line(err)}); try again.") from None

    def leaderboard(self, shot_mode: str = "all", blind_only: bool = False) -> Leaderboard:
        """The leaderboard over the stored votes, recomputed only when there are new ones."""
        key = (shot_mode, bool(blind_only))
        last = self.store.last_vote_id()
        with self._board_lock:
            cached = self._boards.get(key)
            if cached is None or cached[0] != last:
                cached = self._boards[key] = (last, compute(self.store.ballots(), shot_mode, bool(blind_only)))
            return cached[1]
