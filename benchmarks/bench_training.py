"""Training cost of full fine-tuning vs LoRA vs prompt tuning on CPU (not a test).

An architecture-accurate flan-t5-small with random weights (no download) trains on one fixed
random batch: per method, the time of a training step (forward + backward + optimizer step,
median after warm-up) and the peak resident memory of the whole process. Each method runs in a
fresh subprocess so that peak memory is its own (ru_maxrss never goes down within a process).

    python benchmarks/bench_training.py            # 3 warm-up + 10 timed steps per method
    python benchmarks/bench_training.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METHODS = ("full", "lora", "prompt-tuning")


def _rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args) -> dict:
    """One method in this process: build, wrap, time training steps, report as JSON."""
    import torch

    sys.path.insert(0, str(REPO))
    from training.builders import architecture_config, build_random_t5
    from training.methods import get_method
    from training.params import count_parameters

    torch.manual_seed(0)
    module = get_method(args.worker)
    config = module.Config()
    model = build_random_t5(architecture_config(args.arch))
    # No base folder: prompt tuning starts from random vectors (TEXT init only changes values).
    model = module.wrap(model, config, None)
    model.train()
    trainable, total = count_parameters(model)
    loaded_mb = _rss_mb()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate, weight_decay=config.weight_decay)
    vocab = model.config.vocab_size if hasattr(model, "config") else 32128
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(2, vocab, (args.batch, args.source_tokens), generator=generator)
    labels = torch.randint(2, vocab, (args.batch, args.label_tokens), generator=generator)
    attention_mask = torch.ones_like(input_ids)

    times = []
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= args.warmup:
            times.append(time.perf_counter() - started)
    return {"method": args.worker, "trainable": trainable, "all": total,
            "step_s": statistics.median(times), "steps": len(times),
            "loaded_mb": loaded_mb, "peak_mb": _rss_mb(), "threads": torch.get_num_threads()}


def run_method(method: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--arch", args.arch,
               "--batch", str(args.batch), "--source-tokens", str(args.source_tokens),
               "--label-tokens", str(args.label_tokens), "--warmup", str(args.warmup),
               "--steps", str(args.steps)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if completed.returncode != 0:
        sys.exit(f"{method} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    full = next(r for r in rows if r["method"] == "full")
    lines = [f"{'method':<14}{'trainable':>13}{'trainable %':>13}{'step (s)':>10}{'x full':>8}"
             f"{'peak RSS (MB)':>15}{'x full':>8}{'above model (MB)':>18}{'x full':>8}"]
    for r in rows:
        extra, extra_full = r["peak_mb"] - r["loaded_mb"], full["peak_mb"] - full["loaded_mb"]
        lines.append(f"{r['method']:<14}{r['trainable']:>13,}{100 * r['trainable'] / r['all']:>12.3f}%"
                     f"{r['step_s']:>10.3f}{r['step_s'] / full['step_s']:>8.2f}"
                     f"{r['peak_mb']:>15.0f}{r['peak_mb'] / full['peak_mb']:>8.2f}"
                     f"{extra:>18.0f}{extra / extra_full:>8.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 2 timed steps")
    parser.add_argument("--arch", default="flan-t5-small", help="training/architectures/<arch>.json")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--source-tokens", type=int, default=256)
    parser.add_argument("--label-tokens", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.quick:
        args.warmup, args.steps = 1, 2
    started = time.perf_counter()
    rows = [run_method(m, args) for m in METHODS]
    print(f"{args.arch}, random weights, CPU ({rows[0]['threads']} threads), batch {args.batch} x "
          f"{args.source_tokens} input + {args.label_tokens} label tokens, AdamW, median of "
          f"{args.steps} steps after {args.warmup} warm-up; peak RSS of a fresh process per method")
    print(table(rows))
    print(f"(total {time.perf_counter() - started:.0f} s)")
    by = {r["method"]: r for r in rows}
    print("ratios to full fine-tuning: " + "; ".join(
        f"{m} step time x{by[m]['step_s'] / by['full']['step_s']:.2f}, "
        f"peak memory x{by[m]['peak_mb'] / by['full']['peak_mb']:.2f}" for m in ("lora", "prompt-tuning")))


if __name__ == "__main__":
    main()
