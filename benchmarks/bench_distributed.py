"""Two processes vs one on this machine: training step time and evaluation throughput (not a test).

Both go through the project's own paths, launched as users launch them:
- training: `training.run.train` (full fine-tuning of a random-weight flan-t5-small on DialogSum
  train dialogues, the Trainer's DDP over gloo under torchrun), timing each optimizer step with a
  Trainer callback (median after warm-up);
- evaluation: `summarizer.evaluation.evaluate` on DialogSum validation dialogues to a fixed
  length (the model loaded before the clock starts), batches of 16 shared out between processes.

One process gets torch's default threads (one per core); each of two processes gets one thread,
so both sides use every core. The sides alternate (1, 2, 1, 2 ...), and the load average is
printed: other jobs on the machine slow both, the multi-process side more (it needs every core
at once, at every all-reduce). Prints the ratios LAST.

    python benchmarks/bench_distributed.py            # 2 rounds: 2 warm-up + 8 timed steps, 64 dialogues
    python benchmarks/bench_distributed.py --quick    # 1 round: 1 + 3 steps, 32 dialogues (under 3 min)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

ARCH = "flan-t5-small"


# ------------------------------------------------------------------------------------------------
# Workers: run inside the launched processes


def train_worker(args) -> None:
    import torch
    from transformers import TrainerCallback

    from summarizer import distributed
    from training.cli import build_parser
    from training.config import RunSettings, from_namespace
    from training.methods import METHODS
    from training.run import train

    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            times.append(time.perf_counter() - self.started)

    steps = args.warmup + args.steps
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    argv = ["full", "--base", args.base, "--data", common.data_source(), "--output", args.output,
            "--overwrite", "--limit-train", str(steps * args.batch * processes), "--limit-eval", "0",
            "--max-steps", str(steps), "--save-steps", "1000000", "--logging-steps", "1000000",
            "--per-device-train-batch-size", str(args.batch), "--max-source-length", "512", "--quiet"]
    parsed = build_parser().parse_args(argv)
    train("full", from_namespace(RunSettings, parsed), from_namespace(METHODS["full"].Config, parsed),
          progress=False, callbacks=[StepTimer()])
    if distributed.is_main_process():
        timed = times[args.warmup:]
        Path(args.result).write_text(json.dumps({
            "processes": processes, "threads": torch.get_num_threads(), "batch": args.batch,
            "global_batch": args.batch * processes, "step_s": statistics.median(timed),
            "steps": len(timed)}))


def eval_worker(args) -> None:
    import torch

    from summarizer import distributed
    from summarizer.evaluation import evaluate
    from summarizer.generation import DecodingSettings
    from summarizer.registry import Registry

    registry = Registry.from_file(args.registry)
    registry.get("original")  # loading is not what is measured
    examples = common.validation_examples(args.examples)
    decoding = DecodingSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                batch_size=args.batch_size)
    distributed.wait_for_everyone()  # start the clock together
    started = time.perf_counter()
    report = evaluate(registry, ["original"], examples, decoding=decoding, progress=False)
    seconds = time.perf_counter() - started  # the gather at the end waits for the slowest process
    if distributed.is_main_process():
        Path(args.result).write_text(json.dumps({
            "processes": report.settings["processes"], "threads": torch.get_num_threads(),
            "seconds": seconds, "n": len(examples),
            "summaries": [r["summary"] for r in report.rows],
            "rouge1": report.score("original")["rouge1"]}))


# ------------------------------------------------------------------------------------------------
# The parent: launch each side, alternate, report


def launch(worker: str, processes: int, extra: list[str], workdir: Path) -> dict:
    result = workdir / f"{worker}-{processes}-{time.monotonic_ns()}.json"
    script = [str(Path(__file__).resolve()), "--worker", worker, "--result", str(result), *extra]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    if processes == 1:
        env.pop("OMP_NUM_THREADS", None)  # torch's default: a thread per core
        command = [sys.executable, *script]
    else:
        env["OMP_NUM_THREADS"] = "1"  # the cores are shared out between the processes
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node", str(processes), *script]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if completed.returncode != 0:
        sys.exit(f"{worker} with {processes} process(es) failed:\n{completed.stderr[-3000:]}")
    common.log(f"[bench] {worker}, {processes} process(es): {time.perf_counter() - started:.0f} s wall")
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 1 + 3 steps, 32 dialogues")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2)")
    parser.add_argument("--batch", type=int, default=4, help="training examples per process and step")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--examples", type=int, default=None, help="validation dialogues (default 64)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per summary (default 32)")
    parser.add_argument("--batch-size", type=int, default=16, help="evaluation batch size")
    # worker-side arguments
    parser.add_argument("--worker", choices=("train", "eval"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = {"rounds": 1, "warmup": 1, "steps": 3, "examples": 32, "new_tokens": 16}
    full = {"rounds": 2, "warmup": 2, "steps": 8, "examples": 64, "new_tokens": 32}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.worker == "train":
        return train_worker(args)
    if args.worker == "eval":
        return eval_worker(args)

    common.header(f"2 processes vs 1 (torchrun, gloo), random-weight {ARCH}", args.quick)
    started = time.perf_counter()
    models = common.bench_models(ARCH)
    loads = [common.load_average()]
    train_runs: dict[str, list[dict]] = {"1x4": [], "1x8": [], "2x4": []}
    eval_runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        workdir = Path(tmp)
        train_args = ["--base", str(models["original"]), "--output", str(workdir / "out"),
                      "--warmup", str(args.warmup), "--steps", str(args.steps)]
        eval_args = ["--registry", str(models["registry"]), "--examples", str(args.examples),
                     "--new-tokens", str(args.new_tokens), "--batch-size", str(args.batch_size)]
        for round_ in range(args.rounds):
            order = (1, 2) if round_ % 2 == 0 else (2, 1)
            for processes in order:
                eval_runs[processes].append(launch("eval", processes, eval_args, workdir))
            for processes in order:
                if processes == 1:
                    train_runs["1x4"].append(launch("train", 1, [*train_args, "--batch", str(args.batch)], workdir))
                    train_runs["1x8"].append(launch("train", 1, [*train_args, "--batch", str(2 * args.batch)], workdir))
                else:
                    train_runs["2x4"].append(launch("train", 2, [*train_args, "--batch", str(args.batch)], workdir))
            loads.append(common.load_average())

    def step(key):
        return statistics.median(r["step_s"] for r in train_runs[key])

    def rate(key):
        return train_runs[key][0]["global_batch"] / step(key)

    def eval_s(processes):
        return statistics.median(r["seconds"] for r in eval_runs[processes])

    n = eval_runs[1][0]["n"]
    identical = sum(a == b for a, b in zip(eval_runs[1][0]["summaries"], eval_runs[2][0]["summaries"]))
    print(f"load average (1, 5, 15 min) at start and after each round: {' | '.join(loads)}")
    print(f"\ntraining, full fine-tuning, DialogSum train dialogues (prompts up to 512 tokens), "
          f"median of {args.steps} steps after {args.warmup} warm-up, {args.rounds} round(s):")
    print(f"{'setting':<34}{'threads':>8}{'step (s)':>10}{'examples/s':>12}")
    for key, label in (("1x4", f"1 process x {args.batch} examples"),
                       ("1x8", f"1 process x {2 * args.batch} examples"),
                       ("2x4", f"2 processes x {args.batch} examples")):
        print(f"{label:<34}{train_runs[key][0]['threads']:>8}{step(key):>10.3f}{rate(key):>12.2f}")
    print(f"\nevaluation, {n} validation dialogues, {args.new_tokens} new tokens, batches of "
          f"{args.batch_size}, {args.rounds} round(s):")
    print(f"{'setting':<34}{'threads':>8}{'time (s)':>10}{'dialogues/s':>12}")
    for processes in (1, 2):
        label = f"{processes} process{'es' if processes > 1 else ''}"
        print(f"{label:<34}{eval_runs[processes][0]['threads']:>8}{eval_s(processes):>10.2f}"
              f"{n / eval_s(processes):>12.2f}")
    print(f"identical summaries, 2 processes vs 1: {identical}/{n}; ROUGE-1 "
          f"{eval_runs[1][0]['rouge1']:.6f} vs {eval_runs[2][0]['rouge1']:.6f}")
    print(f"(total {time.perf_counter() - started:.0f} s)")
    print(f"ratios, 2 processes / 1: training examples/s x{rate('2x4') / rate('1x4'):.2f} "
          f"(same per-process batch), step time x{step('2x4') / step('1x8'):.2f} (same global "
          f"batch of {2 * args.batch}); evaluation dialogues/s x{eval_s(1) / eval_s(2):.2f}")


if __name__ == "__main__":
    main()
