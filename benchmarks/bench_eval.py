"""Evaluation throughput: the `evaluate` path vs the seeds' one-dialogue-at-a-time loop.

naive: for each dialogue, tokenize it and call `model.generate` on it alone (fp32, batch 1), as
       the seeds' evaluation loop did.
ours:  `evaluation.evaluate(registry, ["original"], examples, decoding=batch_size 16)`: prompts
       sorted by length into batches of 16, inference mode, KV cache (and ROUGE scoring, which
       the naive side does not even do).

Both sides summarize the same DialogSum validation dialogues with the same random-weight
flan-t5-base to a fixed length. The dialogues are taken in evaluate's own order (sorted by prompt
length) in rounds of one batch, and the rounds alternate which side goes first, so a busy machine
slows both sides alike. Greedy fp32
outputs should be the same: differences can only come from float summation order in padded
batches. Prints the exact-match rate, and `ratio naive/ours` (the speed-up) LAST (goal >= 4).

    python benchmarks/bench_eval.py [--quick] [--examples 64] [--new-tokens 60] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 dialogues, 30 new tokens, batches of 8 (under a minute)")
    parser.add_argument("--examples", type=int, default=None, help="validation dialogues (default 64)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per summary (default 60)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--round", type=int, default=16,
                        help="dialogues per alternating round, in evaluate's length order (default 16 = one batch)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for both sides (default: torch's, = cores)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    n_examples = args.examples or (16 if args.quick else 64)
    new_tokens = args.new_tokens or (30 if args.quick else 60)
    if args.quick and args.batch_size == 16:
        args.batch_size = 8  # 16 dialogues in one batch would pad them all to the longest

    from summarizer.evaluation import evaluate
    from summarizer.generation import DecodingSettings
    from summarizer.registry import Registry

    common.header("evaluation throughput: evaluate path vs one generate per dialogue", args.quick)
    paths = common.bench_models()
    tokenizer = common.load_tokenizer()
    examples = common.validation_examples(n_examples)
    prompts = common.prompts_for(examples, tokenizer)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    print(f"inputs: {len(examples)} DialogSum validation dialogues, prompts {min(lengths)}-{max(lengths)} "
          f"tokens (mean {sum(lengths) / len(lengths):.0f}); {new_tokens} new tokens each; "
          f"batch size {args.batch_size}")

    model = common.load_plain_model(paths["original"])
    print(f"parameters: {common.count_params(model):,}")
    registry = Registry.from_file(paths["registry"])
    decoding = DecodingSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens, batch_size=args.batch_size)

    # warm both paths up (and load the registry's copy) on one dialogue
    common.naive_generate(model, tokenizer, prompts[0], 2)
    evaluate(registry, ["original"], examples[:1], decoding=DecodingSettings(max_new_tokens=2), progress=False)

    naive_out: dict[str, str] = {}
    ours_out: dict[str, str] = {}
    times = {"naive": 0.0, "ours": 0.0}
    per_round: dict[str, list[float]] = {"naive": [], "ours": []}
    # evaluate() sorts all prompts by length and cuts them into batches; the rounds follow that same
    # order (one or more of its batches each), so the two sides alternate batch by batch.
    order = sorted(range(len(examples)), key=lambda i: lengths[i])
    size = max(args.round, args.batch_size)
    rounds = [order[i:i + size] for i in range(0, len(order), size)]
    for r, indices in enumerate(rounds):
        def naive():
            for i in indices:
                naive_out[examples[i].id] = common.decode(tokenizer, common.naive_generate(
                    model, tokenizer, prompts[i], new_tokens))

        def ours():
            report = evaluate(registry, ["original"], [examples[i] for i in indices], decoding=decoding,
                              progress=False)
            for row in report.rows:
                if row.get("error"):
                    raise RuntimeError(row["error"])
                ours_out[row["id"]] = row["summary"]

        for name, side in (("naive", naive), ("ours", ours))[:: 1 if r % 2 == 0 else -1]:
            started = time.perf_counter()
            side()
            elapsed = time.perf_counter() - started
            times[name] += elapsed
            per_round[name].append(elapsed)
            common.log(f"[bench] round {r + 1}/{len(rounds)} {name}: {elapsed:.1f}s for {len(indices)} dialogues")

    same = sum(naive_out[e.id] == ours_out[e.id] for e in examples)
    n = len(examples)
    print(f"naive (one model.generate per dialogue): {times['naive']:.1f}s = {times['naive'] / n:.2f} s/dialogue")
    print(f"ours  (evaluate, sorted batches of {args.batch_size}):  {times['ours']:.1f}s = {times['ours'] / n:.2f} s/dialogue")
    print(f"identical summaries (exact match): {same}/{n} = {same / n:.1%}")
    if same < n:
        from summarizer import rouge
        scores = [rouge.score(ours_out[e.id], [naive_out[e.id]])["rougeL"] for e in examples
                  if naive_out[e.id] != ours_out[e.id]]
        print(f"  the {n - same} that differ: mean ROUGE-L of ours against naive {sum(scores) / len(scores):.3f} "
              "(padded batches sum floats in another order; a near-tie in the random weights' logits flips)")
    print(f"test split estimate (500 dialogues): naive {times['naive'] / n * 500 / 60:.1f} min, "
          f"ours {times['ours'] / n * 500 / 60:.1f} min")
    print(f"load average at end: {common.load_average()}")
    round_ratios = sorted(a / b for a, b in zip(per_round["naive"], per_round["ours"]))
    print(f"per-round speed-ups (same dialogues, back to back): {', '.join(f'{r:.2f}' for r in round_ratios)}")
    ratio = times["naive"] / times["ours"]
    print(f"speed-up naive/ours, total time (goal >= 4): {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
