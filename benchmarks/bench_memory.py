"""Memory: peak RSS of one process serving original + instruct + LoRA + prompt tuning.

single: a fresh process loads `original` through the Registry and summarizes one dialogue.
ours:   a fresh process loads all four through the Registry (adapters share their base: the
        LoRA sits in one PeftModel on it, the soft prompt is a (20, 768) tensor) and summarizes
        the dialogue with each.
naive:  (for reference, full runs only) four models loaded separately, as a first version would:
        two plain models and two PeftModels, each on its own copy of the base.

Each is measured in its own fresh subprocess (peak RSS = VmHWM, which counts every resident
page: Python, torch, the weights, and transient copies made while loading or decoding).
Prints `ratio ours/single` LAST (goal <= 2.1; two distinct fp32 backbones make ~2 the floor).

    python benchmarks/bench_memory.py [--quick] [--new-tokens 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

ALL = ["original", "instruct", "peft-lora", "peft-prompt"]


def child(mode: str, new_tokens: int) -> None:
    paths = common.bench_models()
    tokenizer = common.load_tokenizer()
    (example,), _ = common.examples_near_length(tokenizer, 300)
    baseline = common.peak_rss_mb()  # interpreter + libraries, before any weights
    if mode == "naive":
        from peft import PeftModel
        models = [common.load_plain_model(paths["original"]), common.load_plain_model(paths["instruct"]),
                  PeftModel.from_pretrained(common.load_plain_model(paths["original"]), paths["peft-lora"]).eval(),
                  PeftModel.from_pretrained(common.load_plain_model(paths["original"]), paths["peft-prompt"]).eval()]
        prompt = common.prompts_for([example], tokenizer)[0]
        encoded = tokenizer(prompt, return_tensors="pt")
        import torch
        with torch.no_grad():
            for model in models:
                model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    else:
        from summarizer.generation import DecodingSettings, summarize
        from summarizer.registry import Registry
        registry = Registry.from_file(paths["registry"])
        names = ["original"] if mode == "single" else ALL
        results = summarize(registry, names, [example],
                            decoding=DecodingSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens))
        errors = [r.error for r in results if r.error]
        if errors:
            raise SystemExit(errors[0])
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    print(json.dumps({"mode": mode, "peak_mb": common.peak_rss_mb(), "rss_mb": current,
                      "before_weights_mb": baseline}))


def measure(mode: str, new_tokens: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--new-tokens", str(new_tokens)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    common.log(f"[bench] {mode}: peak {result['peak_mb']:.0f} MiB")
    return result


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the naive reference run")
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--child", choices=("single", "ours", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.new_tokens)
        return 0.0

    common.header("memory: one process serving original + instruct + LoRA + prompt tuning", args.quick)
    paths = common.bench_models()
    weights_mb = sum((paths[n] / "model.safetensors").stat().st_size for n in ("original",)) / 2**20
    print(f"one flan-t5-base fp32 checkpoint: {weights_mb:.0f} MiB on disk")
    modes = ["single", "ours"] if args.quick else ["single", "ours", "naive"]
    results = {mode: measure(mode, args.new_tokens) for mode in modes}
    print(f"python + torch + transformers before any weights: {results['single']['before_weights_mb']:.0f} MiB")
    for mode in modes:
        r = results[mode]
        label = {"single": "one model (original)", "ours": "ours: 4 models via Registry",
                 "naive": "naive: 4 models loaded separately"}[mode]
        print(f"{label:36s} peak RSS {r['peak_mb']:7.0f} MiB   RSS at end {r['rss_mb']:7.0f} MiB"
              f"   ({r['peak_mb'] / results['single']['peak_mb']:.2f}x one model)")
    ratio = results["ours"]["peak_mb"] / results["single"]["peak_mb"]
    print(f"ratio ours/single peak RSS (goal <= 2.1): {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
