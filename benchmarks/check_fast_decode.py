"""Does the project's decode loop give generate's tokens? Greedy fp32, one dialogue at a time.

For each model: DialogSum validation dialogues in the zero-shot prompt, `model.generate` and
`summarizer.fast_decode.generate` (with the compiled kernels where they build) with the model's
own generation settings (the mini models block repeated 3-grams), and the count of identical
outputs. Models: the shipped mini models (assets/mini/) and the benchmark's random-weight
flan-t5-base (`--base`, slower: ~5 s per dialogue for both sides).

    python benchmarks/check_fast_decode.py [--limit 64] [--new-tokens 64] [--base]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

MINI = ("mini-original", "mini-instruct")


def check(name: str, model, tokenizer, prompts: list[str], new_tokens: int, forced: bool) -> int:
    import torch

    from summarizer import fast_decode

    same = 0
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens if forced else 0)
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            expected = model.generate(input_ids=ids, **kwargs)
            got = fast_decode.generate(model, input_ids=ids, **kwargs)
        same += got.tolist() == expected.tolist()
    print(f"{name}: {same}/{len(prompts)} identical greedy outputs ({new_tokens} new tokens"
          f"{', forced' if forced else ''})", flush=True)
    return same


def main(argv=None) -> bool:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=64, help="validation dialogues (default 64)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--base", action="store_true", help="also the random-weight flan-t5-base")
    args = parser.parse_args(argv)

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from summarizer import kernels

    print(f"machine: {common.machine()}; kernels: {'built' if kernels.library() is not None else 'unavailable'}")
    examples = common.validation_examples(args.limit)
    ok = True
    for name in MINI:
        folder = ROOT / "assets" / "mini" / name
        tokenizer = AutoTokenizer.from_pretrained(folder)
        # float32 as the registry loads them (they are stored in float16: in float16 a near tie
        # can fall either way between two correct orders of summation)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder, dtype="float32").eval()
        prompts = common.prompts_for(examples, tokenizer)
        ok &= check(name, model, tokenizer, prompts, args.new_tokens, forced=False) == len(prompts)
    if args.base:
        paths = common.bench_models()
        tokenizer = common.load_tokenizer()
        prompts = common.prompts_for(examples, tokenizer)
        model = common.load_plain_model(paths["original"])
        ok &= check("random flan-t5-base", model, tokenizer, prompts, args.new_tokens, forced=True) == len(prompts)
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
