"""int8 on CPU (opt-in): dynamically quantized Linear layers vs fp32, speed and agreement.

Library: torch's own `torch.ao.quantization.quantize_dynamic` (ships with torch, no new
dependency): every nn.Linear becomes a dynamic-quantized Linear, weights int8 per tensor
(4x fewer bytes to read per decode step), activations quantized on the fly, accumulation in int32
with the fbgemm/oneDNN VNNI kernels. torchao is the successor but is not installed and not
pip-reachable offline; quantize_dynamic still exists and works in torch 2.13 (with a deprecation
warning pointing at torchao).

Both sides summarize the same DialogSum validation dialogues at batch 1 (the decode-bound case
where int8 helps most) to a fixed length, alternating per dialogue. Agreement of int8 with fp32:
exact-match rate and ROUGE of the int8 summary against the fp32 one. With random weights the
logits are nearly flat, so small quantization errors flip greedy choices far more often than they
would with a trained checkpoint: read the agreement as a lower bound.
Prints `speed-up fp32/int8` LAST.

    python benchmarks/bench_int8.py [--quick] [--examples 12] [--new-tokens 60]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402


def quantize_int8(model):
    """Dynamic int8 quantization of every nn.Linear (in place), as the registry's opt-in does."""
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def model_bytes(model) -> int:
    """Bytes of parameters and packed (quantized) weights."""
    import torch
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for module in model.modules():
        packed = getattr(module, "_packed_params", None)
        if packed is not None and hasattr(module, "weight"):
            weight = module.weight()
            total += weight.numel() * weight.element_size()
            bias = module.bias()
            if isinstance(bias, torch.Tensor):
                total += bias.numel() * bias.element_size()
    return total


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 dialogues, 20 new tokens (under a minute)")
    parser.add_argument("--examples", type=int, default=None, help="validation dialogues (default 12)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per summary (default 60)")
    args = parser.parse_args(argv)
    n_examples = args.examples or (4 if args.quick else 12)
    new_tokens = args.new_tokens or (20 if args.quick else 60)

    import torch

    from summarizer import rouge

    common.header("int8 (torch.ao dynamic quantization) vs fp32, batch 1", args.quick)
    paths = common.bench_models()
    tokenizer = common.load_tokenizer()
    examples = common.validation_examples(n_examples)
    prompts = common.prompts_for(examples, tokenizer)
    fp32 = common.load_plain_model(paths["original"])
    int8 = quantize_int8(common.load_plain_model(paths["original"]))
    print(f"inputs: {n_examples} validation dialogues, {new_tokens} new tokens each, batch 1")
    print(f"weights: fp32 {model_bytes(fp32) / 2**20:.0f} MiB, int8 {model_bytes(int8) / 2**20:.0f} MiB "
          f"(embeddings stay fp32)")

    def run(model, prompt):
        encoded = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        return common.decode(tokenizer, out[0, 1:])

    run(fp32, prompts[0]), run(int8, prompts[0])  # warm-up
    times = {"fp32": 0.0, "int8": 0.0}
    outputs: dict[str, list[str]] = {"fp32": [], "int8": []}
    for i, prompt in enumerate(prompts):
        for name, model in ((("fp32", fp32), ("int8", int8)))[:: 1 if i % 2 == 0 else -1]:
            started = time.perf_counter()
            outputs[name].append(run(model, prompt))
            times[name] += time.perf_counter() - started
        common.log(f"[bench] {i + 1}/{len(prompts)}: fp32 {times['fp32']:.1f}s, int8 {times['int8']:.1f}s so far")

    same = sum(a == b for a, b in zip(outputs["fp32"], outputs["int8"]))
    scores = [rouge.score(b, [a]) for a, b in zip(outputs["fp32"], outputs["int8"])]
    mean = rouge.aggregate(scores)
    first_diff = []
    for a, b in zip(outputs["fp32"], outputs["int8"]):
        ta, tb = tokenizer(a)["input_ids"], tokenizer(b)["input_ids"]
        k = next((j for j, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
        first_diff.append(k)
    print(f"fp32: {times['fp32']:.1f}s ({times['fp32'] / n_examples:.2f} s/dialogue)")
    print(f"int8: {times['int8']:.1f}s ({times['int8'] / n_examples:.2f} s/dialogue)")
    print(f"agreement int8 vs fp32: exact match {same}/{n_examples} = {same / n_examples:.0%}; "
          f"ROUGE-1 {mean['rouge1']:.3f}, ROUGE-2 {mean['rouge2']:.3f}, ROUGE-L {mean['rougeL']:.3f}; "
          f"first differing token at median position {sorted(first_diff)[len(first_diff) // 2]}")
    print(f"load average at end: {common.load_average()}")
    ratio = times["fp32"] / times["int8"]
    print(f"speed-up fp32/int8: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
