"""One dialogue at batch 1: Hugging Face generate, the project's path, CTranslate2 fp32 and int8.

All sides decode the same prompt ids (the validation dialogue whose zero-shot prompt is closest
to 300 tokens) to the same fixed length with greedy search, on the same random-weight
flan-t5-base weights (CTranslate2 gets them through its own converter, once, cached beside
them). Sides alternate; each ratio compares the fastest run of each (other work on a shared
machine only ever adds time). Agreement: how many of the generated tokens equal generate's.

- generate: `model.generate` on the loaded model, what a first version calls.
- ours: `generation.summarize`, the app's and CLI's path (on the CPU the loop in
  `summarizer/fast_decode.py` with the kernels of `summarizer/kernels`).
- ctranslate2 fp32 / int8: `Translator.translate_batch`, 2 intra-op threads, when the optional
  package is installed (`pip install -r requirements-bench.txt`); skipped with a note otherwise.

The last line is the project's path against the memory-bandwidth floor for the whole dialogue
(new tokens x bytes each step reads / read bandwidth; the encoder is not counted in the floor).

    python benchmarks/bench_latency.py [--quick] [--new-tokens 64] [--repeats 5]
    SUMMARIZER_QUANTIZE=bf16 python benchmarks/bench_latency.py   # the project's path on bf16 weights
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402
from benchmarks.bench_decode import bytes_per_token, read_bandwidth  # noqa: E402


def ctranslate2_folder(original: Path) -> Path | None:
    """The benchmark's original model converted for CTranslate2 (once), or None if not installed."""
    try:
        import ctranslate2  # noqa: F401
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        return None
    folder = original.parent / "ctranslate2-original"
    if not (folder / "model.bin").is_file():
        common.log("[bench] converting the original model for CTranslate2 (once) ...")
        partial = folder.with_name(folder.name + ".partial")
        TransformersConverter(str(original)).convert(str(partial), force=True)
        partial.rename(folder)
    return folder


def agreement(ids: list[int], reference: list[int]) -> str:
    same = sum(a == b for a, b in zip(ids, reference))
    return f"{same}/{len(reference)} tokens as generate" + (" (identical)" if ids == reference else "")


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 new tokens, 2 rounds")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per summary (default 64)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per side (default 5)")
    args = parser.parse_args(argv)
    new_tokens = args.new_tokens or (24 if args.quick else 64)
    repeats = args.repeats or (2 if args.quick else 5)

    import torch

    from summarizer.generation import DecodingSettings, summarize
    from summarizer.registry import QUANTIZE_ENV, Registry

    common.header("latency of one dialogue at batch 1 (flan-t5-base, fp32 unless named)", args.quick)
    paths = common.bench_models()
    tokenizer = common.load_tokenizer()
    (example,), (n_prompt,) = common.examples_near_length(tokenizer, 300)
    prompt = common.prompts_for([example], tokenizer)[0]
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    print(f"input: validation dialogue {example.id}, {n_prompt} prompt tokens; {new_tokens} new tokens")

    model = common.load_plain_model(paths["original"])
    registry = Registry.from_file(paths["registry"])
    ours_model = registry.get("original").backbone
    if ours_model.quantized:  # SUMMARIZER_QUANTIZE: only the project's path reads the lower precision
        print(f"ours: {ours_model.quantized} weights ({QUANTIZE_ENV}); generate and CTranslate2 float32 read fp32")
    decoding = DecodingSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens, no_repeat_ngram_size=0)
    out: dict[str, list[int]] = {}

    def generate():
        with torch.inference_mode():
            result = model.generate(input_ids=ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                    no_repeat_ngram_size=0)
        out["generate"] = result[0, 1:].tolist()

    def ours():
        (result,) = summarize(registry, ["original"], [example], decoding=decoding)
        if result.error:
            raise RuntimeError(result.error)
        out["ours"] = tokenizer(result.summary, add_special_tokens=False).input_ids

    sides = {"generate": generate, "ours": ours}
    folder = ctranslate2_folder(paths["original"])
    if folder is None:
        print("ctranslate2: not installed (pip install -r requirements-bench.txt): its rows are skipped")
    else:
        import ctranslate2
        source = tokenizer.convert_ids_to_tokens(ids[0].tolist())
        for compute_type in ("float32", "int8"):
            translator = ctranslate2.Translator(str(folder), device="cpu", compute_type=compute_type,
                                                intra_threads=torch.get_num_threads())

            def run(translator=translator, name=f"ctranslate2 {compute_type}"):
                (result,) = translator.translate_batch([source], beam_size=1, max_decoding_length=new_tokens,
                                                       min_decoding_length=new_tokens, return_scores=False)
                out[name] = tokenizer.convert_tokens_to_ids(result.hypotheses[0])
            sides[f"ctranslate2 {compute_type}"] = run
        print(f"ctranslate2 {ctranslate2.__version__}, converted from the same weights")

    bandwidths = [read_bandwidth()]
    times = common.alternate(sides, repeats)
    bandwidths.append(read_bandwidth())
    # `ours` is decoded text re-tokenized: compare its ids with generate's text re-tokenized too
    reference = tokenizer(common.decode(tokenizer, out["generate"]), add_special_tokens=False).input_ids
    for name in sides:
        ids_seen = out[name] if name == "ours" else tokenizer(common.decode(tokenizer, out[name]),
                                                              add_special_tokens=False).input_ids
        print(f"{name:>20}: {common.summary(times[name])}; {agreement(ids_seen, reference)}")
    fastest = {name: min(t) for name, t in times.items()}
    print(f"load average at end: {common.load_average()}")
    print(f"ratio ours/generate: {fastest['ours'] / fastest['generate']:.3f}")
    for name in sides:
        if name.startswith("ctranslate2"):
            print(f"ratio ours/{name}: {fastest['ours'] / fastest[name]:.3f}")
    per_token, _ = bytes_per_token(ours_model.model, n_prompt)  # the bytes the project's path reads
    floor = new_tokens * per_token / max(bandwidths)
    print(f"memory-bandwidth floor for {new_tokens} tokens: {floor:.2f} s ({per_token / 1e6:.0f} MB per token, "
          f"{max(bandwidths) / 1e9:.1f} GB/s); ratio floor/ours: {floor / fastest['ours']:.2f}")
    return fastest["ours"] / fastest["generate"]


if __name__ == "__main__":
    main()
