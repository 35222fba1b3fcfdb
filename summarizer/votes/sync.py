"""An off-site copy of the votes on the Hugging Face hub, for Spaces whose disk may be wiped.

With $STUDIO_VOTES_REPO set, huggingface_hub's CommitScheduler pushes an export of the votes
(`votes.jsonl`, see export.py) to that dataset repository every few minutes. All of it runs in
background threads: creating the scheduler already talks to the hub (it creates the repository),
so it is retried in the background until it succeeds, and a push that fails is tried again at the
next turn. The SQLite file stays the record; votes land there whatever the hub does.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from huggingface_hub import CommitScheduler, HfApi

from . import export
from .. import settings
from ..errors import one_line
from .store import VoteStore

log = logging.getLogger(__name__)

VOTES_REPO_ENV = "STUDIO_VOTES_REPO"
PUSH_EVERY_MINUTES = 5
EXPORT_NAME = "votes.jsonl"


class _ExportScheduler(CommitScheduler):
    """A CommitScheduler that first writes a fresh export of the database into its folder."""

    def __init__(self, sync: "VoteSync", **kwargs):
        self._sync, self._exported = sync, None  # set before super() starts the pushing thread
        super().__init__(**kwargs)

    def push_to_hub(self):
        try:
            last = self._sync.store.last_vote_id()
            if last != self._exported:
                with self.lock:  # the scheduler lists the folder under this lock: never a half file
                    partial = self.folder_path / (EXPORT_NAME + ".tmp")
                    with partial.open("w", encoding="utf-8") as handle:
                        export.write(self._sync.store.ballots(), handle, "jsonl")
                    os.replace(partial, self.folder_path / EXPORT_NAME)
                self._exported = last
            result = super().push_to_hub()
            self._sync.state, self._sync.last_error = "pushed", None
            return result
        except Exception as err:
            self._sync.state, self._sync.last_error = "retrying", one_line(err)
            raise


class VoteSync:
    """Pushes the votes to `repo_id` every `every` minutes, in the background."""

    def __init__(self, store: VoteStore, repo_id: str, every: float = PUSH_EVERY_MINUTES,
                 api: HfApi | None = None, folder: Path | None = None):
        self.store, self.repo_id, self.every = store, repo_id, every
        self.api = api or HfApi()
        self.folder = folder or store.path.with_name(store.path.stem + "-hub")
        self.state = "starting"  # starting | scheduled | pushed | retrying
        self.last_error: str | None = None
        self.scheduler: CommitScheduler | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="votes-hub-sync", daemon=True)

    def start(self) -> "VoteSync":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scheduler = _ExportScheduler(
                    self, repo_id=self.repo_id, repo_type="dataset", folder_path=self.folder, every=self.every,
                    private=True, hf_api=self.api, ignore_patterns=["*.tmp"])
                self.state = "scheduled" if self.state == "starting" else self.state
                log.info("votes: pushing to the hub dataset %s every %g minutes", self.repo_id, self.every)
                return
            except Exception as err:  # offline, no token, hub down: the votes stay local meanwhile
                self.state, self.last_error = "retrying", one_line(err)
                log.warning("votes: no copy on the hub yet (%s); votes are kept locally, retrying in %g min",
                            self.last_error, self.every)
                self._stop.wait(self.every * 60)


def start_from_env(store: VoteStore, environ=os.environ) -> VoteSync | None:
    repo_id = settings.text(VOTES_REPO_ENV, environ)
    return VoteSync(store, repo_id).start() if repo_id else None
