"""Shared helpers for the benchmarks: architecture-accurate random-weight models, real DialogSum inputs.

Everything heavy is built once and cached (default ~/.cache/dialogsum-studio-bench, override with
$DIALOGSUM_BENCH_CACHE):

- a T5-sized tokenizer (32,100 pieces, as FLAN-T5's) trained on DialogSum's train split;
- `original`: a random-weight flan-t5-base (247,577,856 parameters, untied lm_head), seed 0;
- `instruct`: a second flan-t5-base with other random weights (seed 1), as a fully fine-tuned model;
- `peft-lora`: a LoRA adapter (r=32, alpha 32, on q and v, B non-zero) on `original`, a real PEFT folder;
- `peft-prompt`: a prompt-tuning adapter (20 virtual tokens) on `original`, a real PEFT folder;
- `models.toml`: a registry naming them, for `summarizer.registry.Registry`.

Inputs are DialogSum validation dialogues ($DIALOGSUM_PATH, default ../shared/data/dialogsum) in
the project's prompt template. Outputs have a fixed length (`min_new_tokens == max_new_tokens`) so
that random weights, which may emit EOS early, cannot make one side of a comparison look faster.

Each benchmark measures both sides in one run, alternating them, and prints its ratio LAST.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CACHE_ENV = "DIALOGSUM_BENCH_CACHE"
DEFAULT_CACHE = Path("~/.cache/dialogsum-studio-bench").expanduser()
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dialogsum"
TOKENIZER_VOCAB = 32100  # FLAN-T5's tokenizer: 32,000 pieces + 100 sentinels (the model has 32,128 rows)
CACHE_VERSION = "v2"
MODEL_NAMES = ("original", "instruct", "peft-lora", "peft-prompt")
EXPECTED_PARAMS = {"flan-t5-base": 247_577_856}


def cache_root() -> Path:
    root = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_source() -> str:
    return os.environ.get("DIALOGSUM_PATH") or str(DEFAULT_DATA)


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Data


def validation_examples(limit: int | None = None):
    from summarizer.data import load_split
    return load_split(data_source(), "validation", limit=limit)


def prompts_for(examples, tokenizer, max_prompt_tokens: int | None = None) -> list[str]:
    """The project's zero-shot prompt text for each example (as generation.summarize builds it)."""
    from summarizer.prompts import DEFAULT_MAX_PROMPT_TOKENS, TokenizerCounter, build_prompt
    counter = TokenizerCounter(tokenizer)
    budget = max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS
    return [build_prompt(e.dialogue, [], counter, budget).text for e in examples]


def examples_near_length(tokenizer, n_tokens: int, count: int = 1, pool: int = 500):
    """Validation examples whose zero-shot prompt is closest to `n_tokens` tokens."""
    examples = validation_examples(pool)
    texts = prompts_for(examples, tokenizer)
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    order = sorted(range(len(examples)), key=lambda i: abs(lengths[i] - n_tokens))
    return [examples[i] for i in order[:count]], [lengths[i] for i in order[:count]]


# --------------------------------------------------------------------------------------------
# Models


def tokenizer_folder() -> Path:
    """A T5 tokenizer (SentencePiece-style unigram, 32,100 pieces) trained on DialogSum train."""
    folder = cache_root() / f"tokenizer-{CACHE_VERSION}"
    if (folder / ".complete").is_file():
        return folder
    from summarizer.data import load_split
    from summarizer.prompts import ANSWER_PREFIX, INSTRUCTION
    from training.builders import train_t5_tokenizer

    log(f"[bench] training a {TOKENIZER_VOCAB}-piece tokenizer on DialogSum train (once) ...")
    started = time.perf_counter()
    train = load_split(data_source(), "train")
    texts = [INSTRUCTION + ANSWER_PREFIX] * 50 + [e.dialogue + "\n" + (e.summary or "") for e in train]
    tokenizer = train_t5_tokenizer(texts, vocab_size=TOKENIZER_VOCAB)
    tokenizer.save_pretrained(folder)
    (folder / ".complete").write_text("")
    log(f"[bench] tokenizer: {len(tokenizer)} pieces in {time.perf_counter() - started:.0f}s")
    return folder


def load_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tokenizer_folder())


def bench_models(architecture: str = "flan-t5-base") -> dict[str, Path]:
    """Folders of the four benchmark models and a registry TOML naming them (built once, cached)."""
    root = cache_root() / f"{architecture}-{CACHE_VERSION}"
    paths = {"original": root / "original", "instruct": root / "instruct", "peft-lora": root / "peft-lora",
             "peft-prompt": root / "peft-prompt", "registry": root / "models.toml", "root": root}
    if (root / ".complete").is_file():
        return paths
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from training.builders import architecture_config, save_random_t5

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer()
    for name, seed in (("original", 0), ("instruct", 1)):
        if not (paths[name] / "model.safetensors").is_file():
            log(f"[bench] building random-weight {architecture} '{name}' (seed {seed}) ...")
            # A fresh config each time: build_random_t5 sets tie_word_embeddings=False on the config
            # it is given, and a T5 built from that config unties its encoder/decoder embeddings too.
            save_random_t5(paths[name], architecture_config(architecture), tokenizer, seed=seed)
    _build_adapters(paths, tokenizer)
    _write_registry(paths)
    (root / ".complete").write_text("")
    return paths


def _build_adapters(paths: dict[str, Path], tokenizer) -> None:
    import torch
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    if not (paths["peft-lora"] / "adapter_model.safetensors").is_file():
        log("[bench] building a random LoRA adapter (r=32, q,v) ...")
        torch.manual_seed(3)
        model = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(paths["original"]),
                               LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=32, lora_alpha=32,
                                          target_modules=["q", "v"], lora_dropout=0.0))
        with torch.no_grad():  # B starts at zero in PEFT: give it weights so the adapter matters
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
        model.save_pretrained(paths["peft-lora"])
        tokenizer.save_pretrained(paths["peft-lora"])
        del model
        gc.collect()
    if not (paths["peft-prompt"] / "adapter_model.safetensors").is_file():
        log("[bench] building a random prompt-tuning adapter (20 virtual tokens) ...")
        torch.manual_seed(4)
        model = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(paths["original"]),
                               PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=20))
        with torch.no_grad():
            model.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
        model.save_pretrained(paths["peft-prompt"])
        tokenizer.save_pretrained(paths["peft-prompt"])
        del model
        gc.collect()


def _write_registry(paths: dict[str, Path]) -> None:
    paths["registry"].write_text(f"""# Benchmark models: random weights of the real architecture (benchmarks/common.py).
[models.original]
kind = "seq2seq"
path = {json.dumps(str(paths['original']))}

[models.instruct]
kind = "seq2seq"
path = {json.dumps(str(paths['instruct']))}

[models.peft-lora]
kind = "lora"
path = {json.dumps(str(paths['peft-lora']))}
base = {json.dumps(str(paths['original']))}

[models.peft-prompt]
kind = "prompt-tuning"
path = {json.dumps(str(paths['peft-prompt']))}
base = {json.dumps(str(paths['original']))}
""", encoding="utf-8")


def load_plain_model(folder: Path | str):
    """What the seeds did: a plain fp32 model from its folder."""
    from transformers import AutoModelForSeq2SeqLM
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    model.eval()
    return model


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def naive_generate(model, tokenizer, prompt: str, new_tokens: int) -> list[int]:
    """The seeds' loop body: one dialogue, one `model.generate`, fp32, no batching."""
    import torch
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    return out[0, 1:].tolist()


def decode(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


# --------------------------------------------------------------------------------------------
# Measurement


def alternate(sides: dict[str, Callable[[], object]], repeats: int, warmup: bool = True) -> dict[str, list[float]]:
    """Run each side `repeats` times, alternating (ABAB..., order flipped every round), in seconds."""
    times: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    if warmup:
        for name in names:
            sides[name]()
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            gc.collect()
            started = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - started)
            log(f"[bench] {name}: {times[name][-1]:.2f}s")
    return times


def summary(times: list[float]) -> str:
    if len(times) == 1:
        return f"{times[0]:.2f}s"
    return f"median {statistics.median(times):.2f}s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> str:
    """CPU model name and core count (as lscpu says), for the results table."""
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def header(title: str, quick: bool) -> None:
    print(f"# {title}{' (--quick)' if quick else ''}")
    print(f"machine: {machine()}")
    print(f"load average at start: {load_average()}")


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
