"""The Studio: the app's long-lived services, each owning its own state and lock, and passed to
what needs them (the web UI's handlers hold the Studio, never module-level state)."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

from ..registry import Registry
from ..votes import VoteStore
from .batch import BatchRunner
from .benchmark import BenchmarkResults
from .compare import Comparisons
from .examples import ExampleLibrary
from .models import ModelCatalog
from .votes import Voting

TEMP_PREFIX = "dialogsum-studio-"


class Studio:
    """models (registry + statuses), examples (DialogSum splits, the shot pool), voting (votes
    and leaderboards), results (the Benchmark tab's file), comparisons and batches (the work)."""

    def __init__(self, registry: Registry | None = None, data_source: str | None = None,
                 results_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                 votes: VoteStore | None = None):
        self.registry = registry or Registry.from_file()
        self.votes = votes or VoteStore()  # $STUDIO_VOTES_DB, else data/votes.sqlite3 (git-ignored)
        self.models = ModelCatalog(self.registry)
        self.examples = ExampleLibrary(data_source)
        self.voting = Voting(self.votes)
        self.results = BenchmarkResults(results_path)
        self.output_dir = self._output_folder(output_dir)
        self.comparisons = Comparisons(self.models, self.examples, self.voting)
        self.batches = BatchRunner(self.models, self.examples, self.output_dir)

    def _output_folder(self, output_dir) -> Path:
        if output_dir is not None:
            folder = Path(output_dir)
        else:
            # A folder of our own for batch results; removed when the Studio goes away or the
            # process exits (weakref.finalize runs at exit too), so starts leave nothing behind.
            folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(folder), ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def close(self) -> None:
        """Remove the Studio's own temporary folder now (at SIGTERM, before the process exits)."""
        cleanup = getattr(self, "_cleanup", None)
        if cleanup is not None:
            cleanup()
