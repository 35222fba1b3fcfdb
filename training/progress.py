"""A training run watched and steered from outside: the hook the Studio's training jobs use.

`JobCallback` is a Trainer callback given to `training.run.train` (its `callbacks`). It writes the
run's progress to a small JSON file in the job's folder (the trainable share once, the loss at
each logging step, each complete checkpoint with its dev ROUGE), and it ends the run early when
asked to: a `stop` file in the folder (the visitor's Stop), a wall-clock deadline (the server's
time cap) or a slice budget (a ZeroGPU call of bounded duration, to be resumed by the next one).

Files, not memory, carry both ways because on ZeroGPU each GPU call runs in a forked process:
whatever the callback kept in memory there would never reach the server's process.

An early end first saves a checkpoint at the current step (so nothing trained is lost) and then
raises `RunInterrupted` from `on_save`, after `training.run`'s marker callback has marked that
checkpoint complete. The exception leaves `train` before it writes the output folder, so a
stopped or paused run never produces anything that looks like a finished model.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

from .checkpoints import write_atomically

PROGRESS_FILE = "progress.json"
STOP_FILE = "stop"


class RunInterrupted(Exception):
    """The run ended early on purpose; `reason` is "stopped", "time-cap" or "paused"."""

    def __init__(self, reason: str, step: int):
        super().__init__(f"training {reason} at step {step}")
        self.reason, self.step = reason, step


def read_progress(folder: Path) -> dict:
    """The progress file of a job folder ({} before the run has begun)."""
    try:
        return json.loads((Path(folder) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def request_stop(folder: Path) -> None:
    (Path(folder) / STOP_FILE).touch()


def _callback_base():
    from transformers import TrainerCallback
    return TrainerCallback


@contextmanager
def _rng_kept():
    """Loading and scoring a checkpoint may draw random numbers (weight init before the load);
    restoring every generator afterwards keeps the run's dropout and data order, and so its
    result, the same as `python -m training` without the scoring."""
    import random

    import numpy
    import torch

    python, numpy_state = random.getstate(), numpy.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(python)
    numpy.random.set_state(numpy_state)


class JobCallback(_callback_base()):
    """Progress out, stop/pause in (see the module docstring).

    `evaluate(checkpoint_folder) -> dict | None` scores a complete checkpoint (dev ROUGE);
    `deadline` is a time.time() after which the run stops for good; `budget_s` the seconds this
    call may train before it pauses for the next call (None: no limit).
    """

    def __init__(self, folder: Path, *, evaluate=None, deadline: float | None = None,
                 budget_s: float | None = None, max_steps: int | None = None):
        self.folder = Path(folder)
        self.evaluate = evaluate
        self.deadline, self.budget_s = deadline, budget_s
        self.started = time.time()
        self.progress = read_progress(self.folder)  # a resumed run keeps the curve it had
        self.progress.setdefault("losses", [])
        self.progress.setdefault("rouge", [])
        if max_steps is not None:
            self.progress["max_steps"] = max_steps
        self._ending: str | None = None

    def _write(self) -> None:
        self.progress["updated"] = time.time()
        write_atomically(self.folder / PROGRESS_FILE, json.dumps(self.progress))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from .params import count_parameters

        if model is not None:
            trainable, total = count_parameters(model)
            self.progress.update(trainable=trainable, total=total)
        # The rate for the ETA is measured from here: loading and tokenizing are not steps.
        self.progress.update(step=state.global_step, max_steps=state.max_steps,
                             rate_origin=[time.time(), state.global_step])
        self._write()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            losses = [p for p in self.progress["losses"] if p[0] < state.global_step]
            self.progress["losses"] = losses + [[state.global_step, float(logs["loss"])]]
            self.progress.update(step=state.global_step, step_time=time.time())
            self._write()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        if (self.folder / STOP_FILE).exists():
            self._ending = "stopped"
        elif self.deadline is not None and now > self.deadline:
            self._ending = "time-cap"
        elif self.budget_s is not None and now - self.started > self.budget_s \
                and state.global_step < state.max_steps:
            self._ending = "paused"
        if self._ending:
            control.should_save = True  # keep the steps done so far; on_save then ends the run

    def on_save(self, args, state, control, **kwargs):
        from .checkpoints import is_complete

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if is_complete(folder):
            entry = {"step": state.global_step}
            # The final checkpoint is scored by the run's own end-of-run evaluation instead.
            if self.evaluate is not None and not self._ending and state.global_step < state.max_steps:
                with _rng_kept():
                    scores = self.evaluate(folder)
                if scores:
                    entry.update(scores)
            self.progress["rouge"] = [r for r in self.progress["rouge"]
                                      if r["step"] != state.global_step] + [entry]
            self.progress["checkpoint"] = state.global_step
            self.progress["step"] = state.global_step
            self._write()
        if self._ending:
            raise RunInterrupted(self._ending, state.global_step)
