"""Run settings shared by every method, as dataclass fields.

Every hyperparameter lives in exactly one dataclass field with a documented default (`option`
puts its help text where `transformers.HfArgumentParser` reads it), and the command line is made
from the fields by HfArgumentParser (training/cli.py), as run_summarization.py does: a default is
written once and every default can be overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from summarizer.data import DEFAULT_DATA, DATA_ENV
from summarizer.generation import DecodingSettings
from summarizer.templates import DEFAULT_TEMPLATE, PLACEHOLDER

DEFAULT_BASE = "google/flan-t5-base"


def option(default: Any, help: str, **extra) -> Any:
    """A dataclass field whose help text becomes the --flag's help."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: list(default), metadata={"help": help, **extra})
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class RunSettings:
    """What to train on and where to write: the same for full, LoRA and prompt tuning."""
    base: str = option(DEFAULT_BASE, "base seq2seq model: hub id or local folder")
    data: str | None = option(None, f"DialogSum source: hub id, folder or .jsonl/.csv file "
                                     f"(default ${DATA_ENV}, else {DEFAULT_DATA})")
    output: str | None = option(None, "folder for the trained model (written atomically at the end)")
    name: str | None = option(None, "registry entry name (default: the output folder's name)")
    overwrite: bool = option(False, "replace an existing output folder and earlier checkpoints")
    resume: bool = option(False, "continue from the latest complete checkpoint of an earlier run")
    prompt: str = option(DEFAULT_TEMPLATE, f"prompt template to train on: a built-in name (python -m "
                                           f"summarizer prompts) or text with {PLACEHOLDER} once; it "
                                           f"becomes the registered model's default template")
    limit_train: int | None = option(None, "train on the first N rows only (the course lab used 125)")
    eval_split: str = option("validation", "split for the ROUGE evaluation after training")
    limit_eval: int | None = option(50, "evaluate on the first N rows of --eval-split "
                                        "(0 skips the evaluation)")
    max_steps: int = option(-1, "stop after this many optimizer steps (-1: run all epochs)")
    per_device_train_batch_size: int = option(8, "examples per step and process (the global "
                                                 "batch is this x processes x accumulation)")
    gradient_accumulation_steps: int = option(1, "micro-batches per optimizer step")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass: "
                                                 "less memory (larger models or batches), "
                                                 "slower steps")
    group_by_length: bool = option(False, "batch rows of similar length together: less padding, "
                                          "faster steps")
    save_steps: int = option(500, "write a checkpoint every N steps")
    save_total_limit: int = option(2, "keep only the newest N checkpoints")
    logging_steps: int = option(10, "log the training loss every N steps")
    max_source_length: int = option(512, "prompt tokens kept (FLAN-T5 was trained on 512)")
    max_target_length: int = option(128, "summary tokens kept (DialogSum summaries are ~30)")
    seed: int = option(42, "seed for initialisation, data order and dropout")
    eval_batch_size: int = option(8, "batch size of the evaluation's generate calls")
    eval_max_new_tokens: int = option(DecodingSettings.max_new_tokens, "longest generated summary in the evaluation")
    save_dtype: str = option("float32", "dtype the weights are stored in (loaders compute in "
                                        "float32)", choices=("float32", "float16", "bfloat16"))
    max_shard_size: str | None = option(None, "split the weights into files of at most this size, "
                                              "such as 9MB (default: transformers' own)")


def from_namespace(cls, namespace):
    """An instance of `cls` from the flags HfArgumentParser made of its fields."""
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if f.init})


def as_dict(settings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()}
