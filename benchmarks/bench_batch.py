"""Many dialogues at batch 16: the project's path against CTranslate2 fp32, same weights, same prompts.

Two runs, each alternating the two sides in one process:

- random-weight flan-t5-base (`original`, benchmarks/common.py), validation dialogues, a fixed
  number of new tokens (min = max, so random weights cannot end rows early), greedy, no n-gram guard;
- a shipped mini model (assets/mini, default mini-instruct), test dialogues, `evaluate`'s settings:
  up to 200 new tokens, the model's own generation_config (no repeated 3-grams), greedy.

ours: `generation.summarize` at batch 16 (what `evaluate`, the Batch tab and the training ROUGE
checks call). ctranslate2: `Translator.translate_batch(max_batch_size=16)` on the same prompt
tokens (the prompts `summarize` built, re-tokenized), converted once from the same weights,
compute_type float32, as many intra-op threads as torch uses. Each side's time is the fastest of
its rounds (other work on a shared machine only ever adds time); the share of identical summaries
compares the model's own text (before speaker names are restored). Each run prints its ratio
ours/ctranslate2 (<= 1: ours as fast or faster); CTranslate2 is optional (requirements-bench.txt):
without it only our side is timed.

    python benchmarks/bench_batch.py [--quick] [--repeats 3] [--mini mini-instruct]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

MINI_REGISTRY = common.ROOT / "assets" / "mini" / "models.toml"


def ctranslate2_translator(folder: Path, cache_name: str):
    """A CTranslate2 fp32 translator for the model in `folder` (converted once), or None if not installed."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        return None
    import torch
    converted = common.cache_root() / f"ctranslate2-{cache_name}"
    if not (converted / "model.bin").is_file():
        common.log(f"[bench] converting {folder.name} for CTranslate2 (once) ...")
        partial = converted.with_name(converted.name + ".partial")
        TransformersConverter(str(folder)).convert(str(partial), force=True)
        partial.rename(converted)
    return ctranslate2.Translator(str(converted), device="cpu", compute_type="float32",
                                  intra_threads=torch.get_num_threads(), inter_threads=1)


def compare(title: str, registry, name: str, folder: Path, examples, decoding, ct2_options: dict,
            repeats: int, cache_name: str) -> float | None:
    """Time both sides alternating; print times, agreement and the ratio; return ours/ctranslate2."""
    from summarizer.generation import summarize

    print(f"\n## {title}")
    tokenizer = registry.get(name).tokenizer
    out: dict[str, list[str]] = {}
    prompts: list[str] = []

    def ours():
        results = summarize(registry, [name], examples, decoding=decoding)
        errors = [r.error for r in results if r.error]
        if errors:
            raise RuntimeError(errors[0])
        out["ours"] = [r.raw_summary for r in results]
        prompts[:] = [r.prompt.text for r in results]

    ours()  # the prompts summarize builds (speaker style, budget), for both sides
    sources = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(prompts)["input_ids"]]
    lengths = sorted(len(s) for s in sources)
    print(f"inputs: {len(examples)} dialogues, prompts {lengths[0]}-{lengths[-1]} tokens "
          f"(median {lengths[len(lengths) // 2]}), batch {decoding.batch_size}")
    sides = {"ours": ours}
    translator = ctranslate2_translator(folder, cache_name)
    if translator is None:
        print("ctranslate2: not installed (pip install -r requirements-bench.txt): only ours is timed")
    else:
        def ctranslate2_side():
            results = translator.translate_batch(sources, max_batch_size=decoding.batch_size, beam_size=1,
                                                 return_scores=False, **ct2_options)
            out["ctranslate2"] = [common.decode(tokenizer, tokenizer.convert_tokens_to_ids(r.hypotheses[0]))
                                  for r in results]
        sides["ctranslate2 fp32"] = ctranslate2_side
    times = common.alternate(sides, repeats)
    for side, taken in times.items():
        print(f"{side:>18}: {common.summary(taken)}")
    print(f"load average at end: {common.load_average()}")
    if translator is None:
        return None
    same = sum(a == b for a, b in zip(out["ours"], out["ctranslate2"]))
    print(f"identical summaries: {same}/{len(examples)} ({100 * same / len(examples):.1f}%)")
    ratio = min(times["ours"]) / min(times["ctranslate2 fp32"])
    print(f"ratio ours/ctranslate2 fp32 ({title}): {ratio:.3f}")
    return ratio


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 dialogues per run, 2 rounds")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per side (default 3)")
    parser.add_argument("--base-examples", type=int, default=None, help="flan-t5-base dialogues (default 32)")
    parser.add_argument("--new-tokens", type=int, default=48, help="flan-t5-base: tokens per summary")
    parser.add_argument("--mini", default="mini-instruct", help="the shipped mini model (assets/mini)")
    parser.add_argument("--mini-examples", type=int, default=None, help="mini test dialogues (default 96)")
    parser.add_argument("--only", choices=("base", "mini"), default=None, help="one run only")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)

    from summarizer.data import load_split
    from summarizer.generation import DecodingSettings
    from summarizer.registry import Registry

    common.header("batch throughput: summarize at batch 16 vs CTranslate2 fp32", args.quick)
    ratios = []
    if args.only in (None, "base"):
        paths = common.bench_models()
        registry = Registry.from_file(paths["registry"])
        n = args.base_examples or (16 if args.quick else 32)
        new = args.new_tokens
        decoding = DecodingSettings(batch_size=16, max_new_tokens=new, min_new_tokens=new, no_repeat_ngram_size=0)
        ratios.append(compare(f"random flan-t5-base, {n} validation dialogues, {new} new tokens", registry,
                              "original", paths["original"], common.validation_examples(n), decoding,
                              dict(max_decoding_length=new, min_decoding_length=new), repeats,
                              "flan-t5-base-original"))
    if args.only in (None, "mini"):
        registry = Registry.from_file(MINI_REGISTRY)
        n = args.mini_examples or (32 if args.quick else 96)
        examples = load_split(common.data_source(), "test", limit=n)
        decoding = DecodingSettings(batch_size=16, max_new_tokens=200)  # evaluate's defaults
        model = registry.get(args.mini)
        guard = model.backbone.model.generation_config.no_repeat_ngram_size or 0
        ratios.append(compare(f"{args.mini}, {n} test dialogues, evaluate's settings", registry, args.mini,
                              Path(model.spec.path), examples, decoding,
                              dict(max_decoding_length=200, no_repeat_ngram_size=guard), repeats, args.mini))
    return ratios


if __name__ == "__main__":
    main()
