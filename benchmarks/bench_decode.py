"""Decode efficiency: ms per generated token at batch 1 against the memory-bandwidth limit.

Each greedy decode step of flan-t5-base reads every decoder weight once (self-attention,
cross-attention q/o, feed-forward; the cross-attention k/v projections run once per dialogue)
plus lm_head (32,128 x 768) and the cached encoder keys/values. At batch 1 that is ~0.5 GB per
token and almost no arithmetic per byte, so the floor is bytes / read bandwidth. The bandwidth
is measured here: a torch sum over a 2 GiB float32 array (all threads), once in every round,
beside that round's decodes, since this machine's bandwidth changes by the minute.

ms per token = (time for N+K tokens - time for N tokens) / K through the project's path
(`generation.summarize`, one model, one dialogue of ~300 prompt tokens), so the encoder and
fixed costs cancel. Each round gives limit / measured; prints `efficiency` (%, the median of the
rounds) LAST, after the same from the fastest times over all rounds.

    python benchmarks/bench_decode.py [--quick] [--tokens 60] [--repeats 5]
    SUMMARIZER_QUANTIZE=bf16 python benchmarks/bench_decode.py   # bf16 weights (half the bytes)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402


def read_bandwidth(repeats: int = 7, gib: float = 2.0) -> float:
    """Bytes per second that a large streaming read (torch sum over `gib` GiB) reaches (best run)."""
    import torch
    data = torch.ones(int(gib * 2**30 / 4), dtype=torch.float32)
    data.sum()
    speeds = []
    for _ in range(repeats):
        started = time.perf_counter()
        data.sum()
        speeds.append(data.numel() * 4 / (time.perf_counter() - started))
    del data
    return max(speeds)


def bytes_per_token(model, prompt_tokens: int) -> tuple[int, dict]:
    """Weight and cache bytes one batch-1 decode step reads."""
    parts = {"decoder weights": 0, "lm_head": 0, "cross-attention k/v (once per dialogue, not counted)": 0}
    for name, param in model.named_parameters():
        size = param.numel() * param.element_size()
        if name.startswith("decoder.") and "embed_tokens" not in name:
            if "EncDecAttention.k." in name or "EncDecAttention.v." in name:
                parts["cross-attention k/v (once per dialogue, not counted)"] += size
            else:
                parts["decoder weights"] += size
        elif name.startswith("lm_head."):
            parts["lm_head"] += size
    config = model.config
    inner = config.num_heads * config.d_kv
    parts["cached encoder keys/values"] = 2 * config.num_decoder_layers * prompt_tokens * inner * 4
    total = parts["decoder weights"] + parts["lm_head"] + parts["cached encoder keys/values"]
    return total, parts


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 extra tokens, 3 rounds (under a minute)")
    parser.add_argument("--tokens", type=int, default=None, help="extra tokens K (default 60)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 5)")
    args = parser.parse_args(argv)
    extra = args.tokens or (20 if args.quick else 60)
    repeats = args.repeats or (3 if args.quick else 5)
    short = 4

    import torch

    from summarizer.generation import DecodingSettings, summarize
    from summarizer.registry import Registry

    paths = common.bench_models()
    tokenizer = common.load_tokenizer()
    (example,), (n_prompt,) = common.examples_near_length(tokenizer, 300)
    registry = Registry.from_file(paths["registry"])
    backbone = registry.get("original").backbone
    model = backbone.model
    # SUMMARIZER_QUANTIZE=bf16 halves the weight bytes, and so the floor it is measured against
    common.header(f"decode efficiency at batch 1 (flan-t5-base, {backbone.quantized or 'fp32'})", args.quick)
    per_token, parts = bytes_per_token(model, n_prompt)
    for what, size in parts.items():
        print(f"  {what}: {size / 1e6:.1f} MB")
    print(f"bytes read per generated token: {per_token / 1e6:.1f} MB (prompt {n_prompt} tokens)")

    def run(n):
        return lambda: summarize(registry, ["original"], [example],
                                 decoding=DecodingSettings(max_new_tokens=n, min_new_tokens=n))

    # The machine's read bandwidth changes by the minute (35-70 GB/s here), so each round measures
    # it beside its own decodes (sides alternating) and is judged against its own floor.
    data = torch.ones(int(2 * 2**30 / 4), dtype=torch.float32)
    times = common.alternate({"bandwidth": data.sum, "short": run(short), "long": run(short + extra)}, repeats)
    bandwidths = [data.numel() * 4 / t for t in times["bandwidth"]]
    del data
    rounds = [((long - short_) / extra * 1000, per_token / bandwidth * 1000)
              for long, short_, bandwidth in zip(times["long"], times["short"], bandwidths)]
    for index, (ms, limit_ms) in enumerate(rounds):
        print(f"  round {index + 1}: {ms:.1f} ms per token, limit {limit_ms:.1f} ms "
              f"({bandwidths[index] / 1e9:.1f} GB/s): {limit_ms / ms * 100:.0f}%")
    # Fastest of each over all rounds: on a shared machine, other work only ever adds time.
    fastest_ms = (min(times["long"]) - min(times["short"])) / extra * 1000
    best_limit_ms = per_token / max(bandwidths) * 1000
    print(f"read bandwidth (torch sum over 2 GiB), per round: {', '.join(f'{b / 1e9:.1f}' for b in bandwidths)} GB/s")
    print(f"generate {short} tokens: {common.summary(times['short'])}; {short + extra} tokens: {common.summary(times['long'])}")
    print(f"fastest: {fastest_ms:.1f} ms per token at batch 1 ({1000 / fastest_ms:.1f} tokens/s); limit at the "
          f"best bandwidth {best_limit_ms:.1f} ms ({per_token / 1e6:.0f} MB / {max(bandwidths) / 1e9:.1f} GB/s): "
          f"{best_limit_ms / fastest_ms * 100:.0f}%")
    print(f"load average at end: {common.load_average()}")
    efficiency = statistics.median(limit_ms / ms * 100 for ms, limit_ms in rounds)
    print(f"decode efficiency (limit / measured, median of the rounds): {efficiency:.0f}%")
    return efficiency


if __name__ == "__main__":
    main()
