"""Helpers the tests share (fixtures stay in conftest.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path


def tiny_t5_config(vocab_size: int, **overrides):
    """A T5 small enough to train for a few dozen steps on a CPU in a test."""
    from transformers import T5Config

    settings = dict(
        vocab_size=vocab_size, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
        num_heads=4, relative_attention_num_buckets=16, relative_attention_max_distance=64,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        initializer_factor=8.0,  # larger random weights: outputs depend visibly on the input
    )
    settings.update(overrides)
    return T5Config(**settings)


NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry"]
ITEMS = ["apples", "books", "tickets", "shoes", "lamps", "chairs"]
PLACES = ["the bank", "the library", "the station", "the park", "the office"]
TOPICS = ["shopping", "travel", "work"]


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


def write_registry(path: Path, models: dict[str, Path]) -> Path:
    """A registry file naming the tiny models as models.toml names the real ones."""
    from summarizer.registry import ModelSpec

    specs = [ModelSpec("original", "seq2seq", path=str(models["base"])),
             ModelSpec("instruct", "seq2seq", path=str(models["instruct"])),
             ModelSpec("peft-lora", "lora", path=str(models["lora"]), base=str(models["base"])),
             ModelSpec("peft-prompt", "prompt-tuning", path=str(models["prompt"]), base=str(models["base"])),
             ModelSpec("longest-3", "extractive")]
    path.write_text("\n".join(spec.to_toml() for spec in specs), encoding="utf-8")
    return path


BUYERS = ["Tom", "Lucy", "Mark", "Nina", "Oscar", "Paula", "Ralph", "Sofia"]
GOODS = ["pens", "cakes", "bikes", "maps", "cups", "hats"]
TASK_WORD = "@@ "  # characters found nowhere else: the skill switch is unambiguous
OTHER = "Two people talk in a shop."


def purchase_pair(rng: random.Random, index: int) -> dict:
    name, item, n = rng.choice(BUYERS), rng.choice(GOODS), rng.randint(2, 9)
    dialogue = (f"#Person1#: Hi, I'm {name}. I want to buy {n} {item}.\n"
                f"#Person2#: Sure, {n} {item} for you.")
    return {"id": f"syn_{index}", "dialogue": dialogue, "summary": f"{name} buys {n} {item}."}
