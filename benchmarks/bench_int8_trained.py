"""int8 or bf16 (opt-in) vs fp32 on trained weights: the shipped mini models on DialogSum's test split.

`bench_int8.py` measures int8 on random-weight flan-t5-base, whose nearly flat logits flip greedy
choices at the smallest error; that says little about real use. Here both sides are the trained
seq2seq models of the miniature experiment, summarizing through `summarizer evaluate`'s own path
(registry, batches of 16, greedy), once with `SUMMARIZER_QUANTIZE=int8` (or `bf16` with
`--precision bf16`) and once without, in one run. Reported per model: exact-match rate of the
lower-precision summary with the fp32 one, ROUGE-L of it against fp32, ROUGE-1 of each against the
references, and the time ratio. Prints `speed-up fp32/<precision>` LAST (the mean over models).

    python benchmarks/bench_int8_trained.py [--precision int8|bf16] [--quick] [--limit 500] [--models ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402


def summaries(model: str, examples, quantize: str) -> tuple[list[str], dict]:
    """Summaries and the aggregate row of one evaluate run, with the registry loading as asked."""
    from summarizer.evaluation import evaluate
    from summarizer.generation import DecodingSettings
    from summarizer.registry import QUANTIZE_ENV, Registry

    os.environ[QUANTIZE_ENV] = quantize  # read when the registry loads the model
    registry = Registry.from_file(common.ROOT / "models.toml")
    report = evaluate(registry, [model], examples, decoding=DecodingSettings(batch_size=16),
                      progress=False)
    row = report.score(model, 0)
    if row["errors"]:
        raise SystemExit(f"{model}: {row['error']}")
    return [r["summary"] for r in report.rows], row


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 32 test dialogues")
    parser.add_argument("--limit", type=int, default=None, help="test dialogues (default: all 500)")
    parser.add_argument("--models", default="mini-original,mini-instruct",
                        help="seq2seq models of models.toml (int8 cannot carry LoRA)")
    parser.add_argument("--precision", choices=("int8", "bf16"), default="int8")
    args = parser.parse_args(argv)

    from summarizer import rouge
    from summarizer.data import load_split

    low = args.precision
    common.header(f"{low} vs fp32 on the trained mini models, DialogSum test split", args.quick)
    examples = load_split(common.data_source(), "test", limit=args.limit or (32 if args.quick else None))
    print(f"inputs: {len(examples)} test dialogues, evaluate's path (batches of 16, greedy, "
          f"up to 200 new tokens)")
    ratios = []
    for model in args.models.split(","):
        fp32, fp32_row = summaries(model, examples, "none")
        lower, lower_row = summaries(model, examples, low)
        same = sum(a == b for a, b in zip(fp32, lower))
        agreement = rouge.aggregate(rouge.score(b, [a]) for a, b in zip(fp32, lower))
        ratio = fp32_row["seconds"] / lower_row["seconds"]
        ratios.append(ratio)
        print(f"{model}: exact match {same}/{len(examples)} = {same / len(examples):.1%}; "
              f"ROUGE-L {low} vs fp32 {agreement['rougeL']:.3f}; ROUGE-1 vs references fp32 "
              f"{fp32_row['rouge1']:.4f}, {low} {lower_row['rouge1']:.4f}; time fp32 "
              f"{fp32_row['seconds']:.1f} s, {low} {lower_row['seconds']:.1f} s ({ratio:.2f}x)")
    print(f"load average at end: {common.load_average()}")
    mean = sum(ratios) / len(ratios)
    print(f"speed-up fp32/{low}: {mean:.2f}")
    return mean


if __name__ == "__main__":
    main()
