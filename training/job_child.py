"""One slice of a training job in a child process of the server (off ZeroGPU).

    python -m training.job_child JOB_FOLDER DEADLINE BUDGET_S     # DEADLINE, BUDGET_S: JSON numbers or null

Why a child: a run that exhausts memory, or a library that crashes, ends this process and so the
job (reported as failed), never the server with its visitors; the Trainer's own output goes to the
job's train.log, not to the server's. The child runs `training.jobs.run_slice`, the code the server
would run itself, and writes its plain-dict outcome to outcome.json atomically (no file: it died).
It ends itself when the server that started it is gone, so a killed server leaves no orphan
training behind.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

PARENT_POLL_S = 2.0


def _exit_with_parent(parent: int) -> None:
    """Polling the parent's id works on every platform (PR_SET_PDEATHSIG is Linux's and follows
    the thread that started the child, not the process)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(3)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    folder, deadline, budget_s = argv[0], json.loads(argv[1]), json.loads(argv[2])
    _exit_with_parent(os.getppid())

    from . import checkpoints
    from .jobs import OUTCOME_FILE, run_slice

    outcome = run_slice(folder, deadline, budget_s)
    checkpoints.write_atomically(Path(folder) / OUTCOME_FILE, json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
