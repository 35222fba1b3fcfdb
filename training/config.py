"""Run settings shared by every method, and argparse options generated from dataclass fields.

Every hyperparameter lives in exactly one dataclass field with a documented default; the command
line is generated from the fields (as Hugging Face's run_summarization.py does with
HfArgumentParser), so a default is written once and every default can be overridden.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from summarizer.data import DEFAULT_DATA, DATA_ENV

DEFAULT_BASE = "google/flan-t5-base"


def option(default: Any, help: str, **extra) -> Any:
    """A dataclass field whose help text becomes the --flag's help."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"help": help, **extra})
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
    eval_max_new_tokens: int = option(200, "longest generated summary in the evaluation")
    save_dtype: str = option("float32", "dtype the weights are stored in (loaders compute in "
                                        "float32)", choices=("float32", "float16", "bfloat16"))
    max_shard_size: str | None = option(None, "split the weights into files of at most this size, "
                                              "such as 9MB (default: transformers' own)")


def _base_type(annotation):
    """(python type, is_sequence) of a field annotation such as `int | None` or `tuple[str, ...]`."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (tuple, list):
        return args[0] if args else str, True
    if args and origin is not None:  # Optional[...] / X | None
        return _base_type(args[0])
    return annotation, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, title: str | None = None) -> None:
    """One --flag per field of `cls`: its type, default and help come from the field."""
    group = parser.add_argument_group(title or cls.__name__, (cls.__doc__ or "").strip().split("\n")[0])
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, sequence = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = dict(dest=f.name, default=default)
        if kind is bool:  # off by default: a plain switch; on by default: --no-X turns it off
            action = argparse.BooleanOptionalAction if default else "store_true"
            group.add_argument(flag, action=action, help=help_text, **kwargs)
            continue
        if sequence:
            kwargs["nargs"] = "+"
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        shown = "" if default is None else f" (default: {_show(default)})"
        group.add_argument(flag, type=kind, metavar=_METAVARS.get(kind, "VALUE"),
                           help=help_text + shown, **kwargs)


_METAVARS = {int: "N", float: "X", str: "TEXT"}


def _show(default) -> str:
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default))
    return str(default)


def from_namespace(cls, namespace: argparse.Namespace):
    """An instance of `cls` from the parsed flags its fields generated."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(namespace, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def as_dict(settings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()}
