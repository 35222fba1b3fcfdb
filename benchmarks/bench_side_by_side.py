"""Side by side: original + instruct + LoRA on one dialogue, the app's path vs three models in a row.

naive: three separately loaded fp32 models (the LoRA one as its own PeftModel on its own copy of
       the base), one `model.generate` each, one after another: what a first version would do.
ours:  `generation.summarize(registry, ["original", "instruct", "peft-lora"], [dialogue])`, the
       app's path: base and LoRA rows in one mixed-adapter batch on one backbone, and the two
       backbones' batches decoding at the same time in two threads (one intra-op thread each).

Both sides decode the same dialogue (the validation dialogue whose prompt is closest to 300
tokens) to a fixed length; outputs must be identical. The machine is shared, so each side runs several times, alternating, and the ratio compares the
fastest run of each (other work only ever adds time); medians are printed too.
Prints `ratio ours/naive` LAST (goal <= 0.6).

    python benchmarks/bench_side_by_side.py [--quick] [--new-tokens 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

NAMES = ("original", "instruct", "peft-lora")


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 new tokens, 2 rounds (under a minute)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per summary (default 60)")
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per side (default 5)")
    args = parser.parse_args(argv)
    new_tokens = args.new_tokens or (20 if args.quick else 60)
    repeats = args.repeats or (2 if args.quick else 5)

    import torch
    from peft import PeftModel

    from summarizer.generation import DecodingSettings, summarize
    from summarizer.registry import Registry

    common.header("side by side: original + instruct + LoRA on one dialogue", args.quick)
    paths = common.bench_models()
    tokenizer = common.load_tokenizer()
    (example,), (n_prompt,) = common.examples_near_length(tokenizer, args.prompt_tokens)
    prompt = common.prompts_for([example], tokenizer)[0]
    print(f"input: validation dialogue {example.id}, {n_prompt} prompt tokens; {new_tokens} new tokens per model")

    # naive: three models, each loaded on its own
    naive_models = {
        "original": common.load_plain_model(paths["original"]),
        "instruct": common.load_plain_model(paths["instruct"]),
        "peft-lora": PeftModel.from_pretrained(common.load_plain_model(paths["original"]), paths["peft-lora"]).eval(),
    }
    print(f"parameters per base model: {common.count_params(naive_models['original']):,}")
    naive_out: dict[str, str] = {}

    def naive():
        for name in NAMES:
            naive_out[name] = common.decode(tokenizer, common.naive_generate(
                naive_models[name], tokenizer, prompt, new_tokens))

    registry = Registry.from_file(paths["registry"])
    decoding = DecodingSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    ours_out: dict[str, str] = {}

    def ours():
        for result in summarize(registry, list(NAMES), [example], decoding=decoding):
            if result.error:
                raise RuntimeError(result.error)
            ours_out[result.model] = result.summary

    import os

    from summarizer.generation import PARALLEL_ENV
    serial_out: dict[str, str] = {}

    def ours_serial():  # the same path with concurrent backbones off: what the threads add
        os.environ[PARALLEL_ENV] = "0"
        try:
            for result in summarize(registry, list(NAMES), [example], decoding=decoding):
                serial_out[result.model] = result.summary
        finally:
            os.environ.pop(PARALLEL_ENV, None)

    times = common.alternate({"naive": naive, "ours": ours, "ours-serial": ours_serial}, repeats)
    same = sum(naive_out[n] == ours_out[n] for n in NAMES)
    print(f"naive (3 models, one generate each, in a row): {common.summary(times['naive'])}")
    print(f"ours  (generation.summarize, 3 names):        {common.summary(times['ours'])}")
    print(f"ours, backbones one after another ({PARALLEL_ENV}=0): {common.summary(times['ours-serial'])}"
          f" = {min(times['ours-serial']) / min(times['naive']):.3f}x naive (fastest runs)")
    print(f"identical outputs: {same}/{len(NAMES)} models (serial path: "
          f"{sum(naive_out[n] == serial_out[n] for n in NAMES)}/{len(NAMES)})")
    for name in NAMES:
        if naive_out[name] != ours_out[name]:
            print(f"  {name} differs:\n    naive: {naive_out[name][:120]!r}\n    ours:  {ours_out[name][:120]!r}")
    print(f"load average at end: {common.load_average()}")
    print(f"ratio ours/naive, median times: {statistics.median(times['ours']) / statistics.median(times['naive']):.3f}"
          " (on a busy machine two-thread runs stall far more than one-thread ones: see README)")
    ratio = min(times["ours"]) / min(times["naive"])
    print(f"ratio ours/naive (fastest of {repeats} runs each, goal <= 0.6): {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
