"""The Studio: the web UI's shared state, with one mixin per concern (models, examples, compare,
batch, benchmark, votes), each in its own module."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path

from ..data import Example, resolve_source
from ..registry import ModelStatus, Registry
from ..votes import VoteStore
from .batch import BatchMixin
from .benchmark import BenchmarkMixin
from .compare import CompareMixin
from .examples import ExamplesMixin
from .inputs import DEFAULT_RESULTS, RESULTS_ENV
from .models import ModelsMixin
from .votes import VotesMixin


TEMP_PREFIX = "dialogsum-studio-"


class Studio(ModelsMixin, ExamplesMixin, CompareMixin, BatchMixin, BenchmarkMixin, VotesMixin):
    """One registry, one data source, one vote store, caches; safe to share between requests."""

    def __init__(self, registry: Registry | None = None, data_source: str | None = None,
                 results_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                 votes: VoteStore | None = None):
        self.registry = registry or Registry.from_file()
        self.votes = votes or VoteStore()  # $STUDIO_VOTES_DB, else data/votes.sqlite3 (git-ignored)
        self.data_source = resolve_source(data_source)
        self.results_path = Path(results_path or os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)
        if output_dir is None:
            # A folder of our own for batch results; removed when the Studio goes away or the
            # process exits (weakref.finalize runs at exit too), so starts leave nothing behind.
            self.output_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.output_dir), ignore_errors=True)
        else:
            self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._splits: dict[str, list[Example]] = {}
        self._split_lock = threading.Lock()
        self._statuses: dict[str, ModelStatus] = {}
        self._status_lock = threading.Lock()
        self._checked = threading.Event()
        self._boards: dict = {}  # (filters) -> (last vote id, Leaderboard)
        self._board_lock = threading.Lock()
