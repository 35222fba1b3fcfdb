"""A training job started as the page starts it vs `python -m training lora` with the same settings.

The same LoRA run (mini-original, 300 steps of batch 8, the first 2,000 DialogSum train dialogues,
a checkpoint every 100 steps, the loss logged every 10, ROUGE on 50 dev dialogues at the end):
- **cli**: `python -m training lora ...` in a subprocess, timed from its start to its exit;
- **job**: `training.jobs.TrainingJobs.submit` in this process (the server's side of /train; the
  job trains in a child process, as on the server off ZeroGPU), timed from the submit to the job's
  `done`, its model registered; its status is polled twice a second as the page does, which also
  measures how often the loss curve moves (in steps and in seconds).
The sides run one after the other (alternating over `--rounds`); the job's extra work (dev ROUGE on
16 rows at each intermediate checkpoint, its progress file) is part of its time.

Prints the job's final dev ROUGE-1 beside mini-original's on the same 50 dev dialogues, and, last,
the time ratio job / cli (the acceptance bound is 1.1).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train_job.py            # ~2 x 5 min on 2 cores
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train_job.py --quick    # 30 steps, 200 rows
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.common import data_source, log  # noqa: E402  (sets HF_HUB_OFFLINE, for the CLI too)

BASE = "mini-original"


def settings(args) -> dict:
    """The run's settings, named as training's fields (the job's request and the CLI's flags)."""
    return {"max_steps": args.steps, "per_device_train_batch_size": args.batch_size,
            "limit_train": args.limit_train, "save_steps": args.save_steps, "logging_steps": 10,
            "limit_eval": args.limit_eval}


def run_cli(args, folder: Path) -> dict:
    base = ROOT / "assets" / "mini" / BASE
    argv = [sys.executable, "-m", "training", "lora", "--base", str(base), "--data", data_source(),
            "--output", str(folder / "cli-model"), "--quiet"]
    for key, value in settings(args).items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the CLI failed: {done.stderr.strip().splitlines()[-1]}")
    config = json.loads((folder / "cli-model" / "training_config.json").read_text())
    return {"seconds": seconds, "rouge1": config["rouge"]["rouge1"]}


def run_job(args, folder: Path, name: str) -> dict:
    from summarizer.registry import Registry
    from training.job_request import training_caps
    from training.jobs import TrainingJobs

    jobs = TrainingJobs(Registry.from_file(ROOT / "models.toml"), folder / "jobs",
                        data_source=data_source(), caps=training_caps({}))
    started = time.perf_counter()
    job_id = jobs.submit({"method": "lora", "base": BASE, "name": name, **settings(args)})
    answered = time.perf_counter() - started
    updates, last, running_seen = [], None, False
    while (status := jobs.status(job_id))["state"] in ("queued", "running"):
        running_seen |= status["state"] == "running" and 0 < status["step"] < args.steps
        if status["losses"] and status["losses"][-1] != last:
            last = status["losses"][-1]
            updates.append((time.perf_counter(), last[0]))
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    jobs.close()
    if status["state"] != "done":
        sys.exit(f"the job ended {status['state']}: {status['error']}")
    steps = [s for s, _ in status["losses"]]
    return {"seconds": seconds, "answered": answered, "rouge1": status["final_rouge"]["rouge1"],
            "max_step_gap": max(b - a for a, b in zip(steps, steps[1:])),
            "max_seconds_between_updates": max((b[0] - a[0] for a, b in zip(updates, updates[1:])),
                                               default=None),
            "points": len(steps), "running_seen": running_seen,
            "trainable_share": status["trainable_share"],
            "checkpoint_rouge": [(r["step"], round(r["rouge1"], 4)) for r in status["rouge"]]}


def base_rouge(args) -> float:
    from summarizer.data import load_split
    from summarizer.registry import Registry
    from training.evaluation import evaluate_spec

    spec = Registry.from_file(ROOT / "models.toml").spec(BASE)
    rows = load_split(data_source(), "validation", limit=args.limit_eval)
    return evaluate_spec(spec, rows, progress=False)["rouge1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit-train", type=int, default=2000)
    parser.add_argument("--limit-eval", type=int, default=50)
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="cli+job pairs, order alternating")
    parser.add_argument("--first", choices=("cli", "job"), default="cli",
                        help="the side that runs first in round 0")
    parser.add_argument("--quick", action="store_true", help="30 steps on 200 rows, 20 dev rows")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.limit_train, args.limit_eval, args.save_steps = 30, 200, 20, 10
    log(f"load before: {os.getloadavg()}")
    cli, job = [], []
    with tempfile.TemporaryDirectory(prefix="bench-train-job-") as tmp:
        for round_ in range(args.rounds):
            order = ("cli", "job") if args.first == "cli" else ("job", "cli")
            for side in (order if round_ % 2 == 0 else order[::-1]):
                folder = Path(tmp) / f"{side}-{round_}"
                folder.mkdir()
                result = run_cli(args, folder) if side == "cli" else run_job(args, folder, f"bench-{round_}")
                (cli if side == "cli" else job).append(result)
                log(f"round {round_} {side}: {json.dumps(result)}  load {os.getloadavg()}")
    original = base_rouge(args)
    cli_s = sum(r["seconds"] for r in cli) / len(cli)
    job_s = sum(r["seconds"] for r in job) / len(job)
    print(f"settings: lora on {BASE}, {args.steps} steps x batch {args.batch_size}, "
          f"{args.limit_train} train rows, checkpoint every {args.save_steps}, {args.rounds} round(s)")
    print(f"/train answered in {max(r['answered'] for r in job):.2f} s; seen running mid-way: "
          f"{all(r['running_seen'] for r in job)}")
    print(f"loss curve: a point every <= {max(r['max_step_gap'] for r in job)} steps, "
          f"at most {max(r['max_seconds_between_updates'] or 0 for r in job):.1f} s apart "
          f"(polled every 0.5 s)")
    print(f"dev ROUGE-1 on {args.limit_eval} rows: job {job[-1]['rouge1']:.4f}, cli {cli[-1]['rouge1']:.4f}, "
          f"{BASE} {original:.4f}")
    print(f"load after: {os.getloadavg()}")
    print(f"wall time: cli {cli_s:.1f} s, job {job_s:.1f} s; ratio job/cli = {job_s / cli_s:.3f}")


if __name__ == "__main__":
    main()
