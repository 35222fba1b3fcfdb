"""Shared fixtures: tiny T5 models built here (random init, a tokenizer trained on our own text),
saved as real Hugging Face folders with real PEFT adapters, and small DialogSum-format data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry"]
ITEMS = ["apples", "books", "tickets", "shoes", "lamps", "chairs"]
PLACES = ["the bank", "the library", "the station", "the park", "the office"]
TOPICS = ["shopping", "travel", "work"]


@pytest.fixture(scope="session", autouse=True)
def votes_outside_the_checkout(tmp_path_factory):
    """Every Studio a test builds without its own vote store writes to a temporary database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_VOTES_DB", str(tmp_path_factory.mktemp("votes") / "votes.sqlite3"))
        yield


def synthetic_pair(rng: random.Random, index: int) -> dict:
    """A short dialogue in DialogSum's format with a templated summary (our own text)."""
    name, item, place = rng.choice(NAMES), rng.choice(ITEMS), rng.choice(PLACES)
    n = rng.randint(2, 9)
    dialogue = (f"#Person1#: Hello, I am {name}. I would like {n} {item}, please.\n"
                f"#Person2#: Of course. Shall I bring them to {place}?\n"
                f"#Person1#: Yes, {place} is fine. Thank you very much.")
    return {"id": f"syn_{index}", "dialogue": dialogue,
            "summary": f"{name} orders {n} {item} to {place}.", "topic": rng.choice(TOPICS)}


def synthetic_pairs(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [synthetic_pair(rng, i) for i in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_release_folder(folder: Path, train: int = 12, dev: int = 4, test: int = 4) -> Path:
    """A folder in the authors' release layout: test dialogues carry summary1..3 and topic1..3."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = synthetic_pairs(train + dev + test, seed=1)
    write_jsonl(folder / "dialogsum.train.jsonl",
                [{"fname": f"train_{i}", "dialogue": r["dialogue"], "summary": r["summary"], "topic": r["topic"]}
                 for i, r in enumerate(rows[:train])])
    write_jsonl(folder / "dialogsum.dev.jsonl",
                [{"fname": f"dev_{i}", "dialogue": r["dialogue"], "summary": r["summary"], "topic": r["topic"]}
                 for i, r in enumerate(rows[train:train + dev])])
    write_jsonl(folder / "dialogsum.test.jsonl",
                [{"fname": f"test_{i}", "dialogue": r["dialogue"],
                  "summary1": r["summary"], "topic1": r["topic"],
                  "summary2": r["summary"].replace("orders", "asks for"), "topic2": r["topic"],
                  "summary3": f"Person1 wants {r['summary'].split(' orders ')[1]}", "topic3": r["topic"]}
                 for i, r in enumerate(rows[train + dev:])])
    return folder


def tokenizer_corpus() -> list[str]:
    from summarizer.prompts import INSTRUCTION, ANSWER_PREFIX
    rows = synthetic_pairs(200, seed=2)
    return [INSTRUCTION + ANSWER_PREFIX] * 20 + [r["dialogue"] + "\n" + r["summary"] for r in rows]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny T5 base and a second checkpoint ("instruct"), a LoRA and a prompt-tuning adapter."""
    import torch
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    from summarizer.testing import save_random_t5, tiny_t5_config, train_t5_tokenizer

    root = tmp_path_factory.mktemp("models")
    tokenizer = train_t5_tokenizer(tokenizer_corpus(), vocab_size=1000)
    config = tiny_t5_config(len(tokenizer))
    base = save_random_t5(root / "base", config, tokenizer, seed=0)
    instruct = save_random_t5(root / "instruct", config, tokenizer, seed=1)

    torch.manual_seed(3)
    lora = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(base),
                          LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=4, lora_alpha=8,
                                     target_modules=["q", "v"], lora_dropout=0.0))
    with torch.no_grad():  # LoRA B starts at zero; give it weights so the adapter changes outputs
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    lora.save_pretrained(root / "lora")
    tokenizer.save_pretrained(root / "lora")

    torch.manual_seed(4)
    prompt = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(base),
                            PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=4))
    with torch.no_grad():
        prompt.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
    prompt.save_pretrained(root / "prompt")
    return {"base": base, "instruct": instruct, "lora": root / "lora", "prompt": root / "prompt",
            "root": root}


def write_registry(path: Path, models: dict[str, Path]) -> Path:
    path.write_text(f"""
[models.original]
kind = "seq2seq"
path = "{models['base']}"

[models.instruct]
kind = "seq2seq"
path = "{models['instruct']}"

[models.peft-lora]
kind = "lora"
path = "{models['lora']}"
base = "{models['base']}"

[models.peft-prompt]
kind = "prompt-tuning"
path = "{models['prompt']}"
base = "{models['base']}"

[models.longest-3]
kind = "extractive"
""", encoding="utf-8")
    return path


@pytest.fixture
def registry_file(tmp_path, tiny_models) -> Path:
    return write_registry(tmp_path / "models.toml", tiny_models)


@pytest.fixture
def release_folder(tmp_path) -> Path:
    return write_release_folder(tmp_path / "dialogsum")
