"""Shared fixtures: tiny T5 models built here (random init, a tokenizer trained on our own text),
saved as real Hugging Face folders with real PEFT adapters, and small DialogSum-format data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from helpers import (OTHER, TASK_WORD, purchase_pair, tiny_t5_config, tokenizer_corpus, write_jsonl,
                     write_registry, write_release_folder)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def votes_outside_the_checkout(tmp_path_factory):
    """Every Studio a test builds without its own vote store writes to a temporary database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_VOTES_DB", str(tmp_path_factory.mktemp("votes") / "votes.sqlite3"))
        # and every app a test builds keeps its training jobs (and the models they register) there too
        patch.setenv("STUDIO_JOBS_DIR", str(tmp_path_factory.mktemp("jobs")))
        yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny T5 base and a second checkpoint ("instruct"), a LoRA and a prompt-tuning adapter."""
    import torch
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    from training.builders import save_random_t5, train_t5_tokenizer

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


@pytest.fixture
def registry_file(tmp_path, tiny_models) -> Path:
    return write_registry(tmp_path / "models.toml", tiny_models)


@pytest.fixture
def release_folder(tmp_path) -> Path:
    return write_release_folder(tmp_path / "dialogsum")


# ------------------------------------------------------------------------------------------------
# A tiny base with a skill, for the training tests

def _pretrain(model, tokenizer, steps: int = 400) -> None:
    """Teach the tiny base the task behind the marker "@@" (and a decoy sentence without it)."""
    import torch

    from summarizer.prompts import format_prompt

    rng = random.Random(1)
    pool = [purchase_pair(rng, i) for i in range(400)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = rng.sample(pool, 16)
        tagged = [rng.random() < 0.5 for _ in batch]
        sources = [(TASK_WORD if t else "") + format_prompt(r["dialogue"]) for r, t in zip(batch, tagged)]
        targets = [r["summary"] if t else OTHER for r, t in zip(batch, tagged)]
        inputs = tokenizer(sources, return_tensors="pt", padding=True)
        labels = tokenizer(text_target=targets, return_tensors="pt", padding=True)["input_ids"]
        labels[labels == tokenizer.pad_token_id] = -100
        model(**inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    """A pretrained tiny base folder and DialogSum-layout data (train/validation .jsonl).

    A randomly initialised T5 cannot be prompt-tuned (a frozen random network has nothing for a
    soft prompt to steer), so the base first gets a skill, as FLAN's instruction tuning gives
    FLAN-T5 one: with the task marker "@@" before the prompt it writes the summary, and without it
    a fixed sentence unrelated to the reference. Fine-tuning (tests/test_training.py,
    tests/test_distributed.py) must then learn the summary from the plain prompt."""
    import torch

    from summarizer.prompts import ANSWER_PREFIX, INSTRUCTION
    from training.builders import build_random_t5, train_t5_tokenizer

    root = tmp_path_factory.mktemp("training")
    rng = random.Random(0)
    rows = [purchase_pair(rng, i) for i in range(260)]
    data = root / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", rows[:200])
    write_jsonl(data / "validation.jsonl", rows[200:])
    corpus = [INSTRUCTION + ANSWER_PREFIX] * 20 + [TASK_WORD + OTHER] * 20 + [
        r["dialogue"] + "\n" + r["summary"] for r in rows]
    tokenizer = train_t5_tokenizer(corpus, vocab_size=200)
    torch.manual_seed(0)
    model = build_random_t5(tiny_t5_config(len(tokenizer), initializer_factor=1.0))
    _pretrain(model, tokenizer)
    base = root / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    return {"root": root, "base": base, "data": data}
