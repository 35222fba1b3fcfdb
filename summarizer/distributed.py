"""Several processes of one run (`torchrun`, `accelerate launch`), through Accelerate's PartialState.

A plain `python -m ...` is one process: nothing here starts torch.distributed, and every helper
just runs its function. Under a launcher (WORLD_SIZE > 1) the first call to `processes()` joins
the process group: gloo on CPUs, nccl on GPUs.

The helpers exist so that a failure on one process is a failure on all of them, at the same
point: a process that raised while the others wait in a collective would hang the run until the
launcher's timeout. Each helper therefore catches the failure, shares it, and raises on every
process; only the main process prints the one-line error (`is_main_process`).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar

from .errors import UserError, one_line

T = TypeVar("T")


class OtherProcessFailed(UserError):
    """Raised on the processes that did not fail themselves, so that every process stops."""


def launched() -> bool:
    """True when a launcher started this process as one of several (WORLD_SIZE is its contract)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or a single process. Read from the launcher's RANK, so it also holds before the
    process group exists (argument errors are printed before any joining)."""
    return int(os.environ.get("RANK", "0")) == 0


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")


def backend() -> str | None:
    """The process group's backend: gloo on CPUs (Accelerate would pick MPI where torch has it),
    None on GPUs, for Accelerate's own choice (nccl). None for one process."""
    return "gloo" if launched() and _on_cpu() else None


def processes():
    """Accelerate's PartialState of this run, or None for a single process."""
    if not launched():
        return None
    from accelerate import PartialState

    cpu = _on_cpu()
    return PartialState(cpu=cpu, **({"backend": backend()} if cpu else {}))


def leave() -> None:
    """Leave the process group before the interpreter exits. Left to exit, torch destroys the
    gloo group's threads while they still run, and a process can abort ("terminate called without
    an active exception", exit -6) after it had already finished, or refused, cleanly."""
    if not launched():
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        processes().destroy_process_group()


def wait_for_everyone() -> None:
    state = processes()
    if state is not None:
        state.wait_for_everyone()


def gather(items: list) -> list:
    """Every process's `items`, concatenated in process order, on every process."""
    if processes() is None:
        return list(items)
    from accelerate.utils import gather_object

    return gather_object(list(items))


def agree(check: Callable[[], T]) -> T:
    """Run `check` on every process; if it fails on any, it fails on all, with the same message.

    Every process checks for itself (each reads the files it will use), but none goes on alone:
    a flag that one process refuses stops all of them before any work."""
    failure = None
    try:
        value = check()
    except Exception as err:
        value, failure, own = None, (isinstance(err, UserError), one_line(err)), err
    if processes() is None:
        if failure:
            raise own
        return value
    failures = gather([failure])
    if failure is not None:
        raise own  # this process's own error, with its own type (and traceback if it is a bug)
    for rank, other in enumerate(failures):
        if other is not None:
            raise OtherProcessFailed(other[1] if other[0] else f"process {rank} failed: {other[1]}")
    return value


def on_main(action: Callable[[], T]) -> T:
    """Run `action` on the main process only; every process gets its result, or its failure."""
    state = processes()
    if state is None:
        return action()
    from accelerate.utils import broadcast_object_list

    outcome: list = [None]
    if state.is_main_process:
        try:
            outcome = [("ok", action())]
        except BaseException as err:
            broadcast_object_list([("failed", isinstance(err, UserError), one_line(err))])
            raise
    outcome = broadcast_object_list(outcome)
    if outcome[0][0] == "failed":
        _, user_error, message = outcome[0]
        raise OtherProcessFailed(message if user_error else f"the main process failed: {message}")
    return outcome[0][1]


def share(items: Sequence[T], state) -> list[T]:
    """This process's share of `items` (e.g. batches): every N-th, starting at its rank.

    Accelerate's split_between_processes gives contiguous slices; batches sorted by length would
    then put all the long ones on the last process. Striding gives each process a mix."""
    if state is None or state.num_processes == 1:
        return list(items)
    return list(items[state.process_index::state.num_processes])
