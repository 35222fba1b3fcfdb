"""The registry's models as the Studio shows them: status checks, labels, defaults, warm-up."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import Sequence

from ..errors import UserError
from ..registry import ModelStatus, Registry
from .inputs import shorten

log = logging.getLogger(__name__)

# Pre-selected on the Compare and Batch tabs, in this order, when they can run (at most
# MAX_DEFAULTS). A fresh offline clone can run the shipped miniature models and longest-3 only,
# so it opens on the miniature experiment: original, fine-tuned, PEFT and the baseline.
PREFERRED_DEFAULTS = ("mini-original", "mini-instruct", "mini-lora", "original", "peft-lora",
                      "longest-3")
MAX_DEFAULTS = 4


class ModelCatalog:
    """The registry's models as the page shows them. Owns the last status check and its lock."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._statuses: dict[str, ModelStatus] = {}
        self._status_lock = threading.Lock()
        self._checked = threading.Event()

    def names(self) -> list[str]:
        return self.registry.names()

    def default_models(self) -> list[str]:
        """The preferred models that can run; before the first status check, those listed.

        A model whose check failed is never pre-selected: a first comparison should not open
        on an error card. With none of the preferred ones runnable, the first three that are.
        """
        with self._status_lock:
            known = dict(self._statuses)
        names = self.names()
        runnable = [n for n in names if n not in known or known[n].ok]
        return [n for n in PREFERRED_DEFAULTS if n in runnable][:MAX_DEFAULTS] or runnable[:3]

    def without_server_paths(self, message: str | None) -> str | None:
        """`message` with the registry's folder cut from the paths it names: the page shows
        `outputs/instruct` as models.toml says it, not where the server keeps its checkout."""
        source = getattr(self.registry, "source", None)
        if not message or source is None:
            return message
        folder = str(source.expanduser().resolve().parent)
        return message.replace(folder + os.sep, "").replace(folder, ".")

    def refresh_statuses(self) -> list[ModelStatus]:
        """Check every model's files (never loads weights, never raises)."""
        statuses = []
        for name in self.names():
            try:
                status = self.registry.status(name, check=True)
            except Exception as err:  # a status check must not take the page down
                status = ModelStatus(name, self.registry.spec(name).kind, "error", str(err))
            statuses.append(replace(status, reason=self.without_server_paths(status.reason)))
        with self._status_lock:
            self._statuses = {s.name: s for s in statuses}
        self._checked.set()
        return statuses

    def registered(self, spec=None) -> None:
        """A model was added to the registry at run time (a finished training job): check again."""
        self.refresh_statuses()

    def wait_for_statuses(self, timeout: float) -> bool:
        """Wait (up to `timeout` seconds) for the first status check; True once it is done."""
        return self._checked.wait(timeout)

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for the model checkboxes; labels carry each model's status."""
        with self._status_lock:
            known = dict(self._statuses)
        checked = self._checked.is_set()
        choices = []
        for name in self.names():
            status = known.get(name)
            if status is None:
                label = f"{name} · checking…" if not checked else f"{name} · unknown"
            elif status.ok:
                label = f"{name} · {status.state}"
            else:
                label = f"{name} · unavailable: {shorten(status.reason, 90)}"
            choices.append((label, name))
        return choices

    def status_table(self) -> list[dict]:
        with self._status_lock:
            known = dict(self._statuses)
        rows = []
        for name in self.names():
            spec = self.registry.spec(name)
            status = known.get(name)
            rows.append({"model": name, "kind": spec.kind,
                         "status": status.state if status else "checking",
                         "reason": status.reason if status else "",
                         "description": spec.description})
        return rows

    def start_background(self, warm: Sequence[str] = ()) -> threading.Thread:
        """Check statuses, then load `warm` models, in a daemon thread: start-up never waits."""
        def work():
            try:
                statuses = {s.name: s for s in self.refresh_statuses()}
                for name in warm:
                    if name in statuses and statuses[name].ok:
                        started = time.perf_counter()
                        try:
                            self.registry.get(name)
                            log.info("warmed up %s in %.1fs", name, time.perf_counter() - started)
                        except UserError as err:
                            log.warning("warm-up of %s failed: %s", name, err)
                self.refresh_statuses()
            except Exception:  # never let the background thread crash loudly
                log.exception("background status check failed")
        thread = threading.Thread(target=work, name="studio-warmup", daemon=True)
        thread.start()
        return thread
