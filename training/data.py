"""Training rows: DialogSum examples in the summarizer's prompt template, tokenized for T5.

The prompt comes from `summarizer.prompts.format_prompt`, the template the app and the evaluation
use at inference, so a model is trained on exactly the text it will later be given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from summarizer.data import Example, load_split, resolve_source
from summarizer.errors import DataError
from summarizer.prompts import format_prompt

LABEL_PAD = -100  # the label value PyTorch's cross-entropy (and so the T5 loss) ignores


def load_training_data(source: str | None, limit_train: int | None, eval_split: str,
                       limit_eval: int | None) -> tuple[list[Example], list[Example]]:
    """(train, eval) examples. One file has no splits: its last rows are held out for eval."""
    source = resolve_source(source)
    train = load_split(source, "train")
    if limit_train is not None:
        if limit_train < 1:
            raise DataError(f"--limit-train must be at least 1, got {limit_train}")
    evaluation: list[Example] = []
    if Path(source).expanduser().is_file():
        held_out = min(limit_eval or 0, len(train) // 5)
        train, evaluation = train[: len(train) - held_out], train[len(train) - held_out:]
    if limit_train is not None:
        train = train[:limit_train]
    check_summaries(train, source)
    if limit_eval and not Path(source).expanduser().is_file():
        try:
            evaluation = load_split(source, eval_split, limit=limit_eval)
        except DataError as err:
            raise DataError(f"{err} (or pass --limit-eval 0 to skip the evaluation)") from None
    return train, evaluation[: limit_eval or 0]


def check_summaries(examples: Sequence[Example], source: str) -> None:
    if not examples:
        raise DataError(f"{source}: no training rows")
    missing = [e.id for e in examples if not e.summary]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise DataError(f"{source}: {len(missing)} of {len(examples)} training rows have no summary "
                        f"({shown}); training needs a 'summary' column")


def tokenize(examples: Sequence[Example], tokenizer, max_source_length: int,
             max_target_length: int) -> list[dict]:
    """input_ids/attention_mask of the prompt and `labels` (token ids of the first reference)."""
    prompts = tokenizer([format_prompt(e.dialogue) for e in examples], max_length=max_source_length,
                        truncation=True)
    labels = tokenizer(text_target=[e.summary for e in examples], max_length=max_target_length,
                       truncation=True)
    return [{"input_ids": ids, "attention_mask": mask, "labels": target}
            for ids, mask, target in zip(prompts["input_ids"], prompts["attention_mask"],
                                         labels["input_ids"])]


def collator(tokenizer):
    """Pads each batch to its longest row; labels are padded with -100 so padding is not learned
    (padding them with the pad token would teach the model to emit padding)."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=LABEL_PAD, padding=True)
