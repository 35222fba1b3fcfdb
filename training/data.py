"""Training rows: DialogSum examples in a prompt template, tokenized for T5.

The prompt comes from `summarizer.prompts.format_prompt` (`Template.render`), the one function the
app and the evaluation use at inference, so a model is trained on exactly the text it will later
be given; the template trained on becomes the registered model's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from summarizer.data import Example, load_split, resolve_source
from summarizer.errors import DataError
from summarizer.prompts import format_prompt
from summarizer.templates import EXPERIMENT, Template

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
             max_target_length: int, template: Template = EXPERIMENT) -> list[dict]:
    """input_ids/attention_mask of the prompt in `template` and `labels` (token ids of the first
    reference)."""
    prompts = tokenizer([format_prompt(e.dialogue, template) for e in examples],
                        max_length=max_source_length, truncation=True)
    labels = tokenizer(text_target=[e.summary for e in examples], max_length=max_target_length,
                       truncation=True)
    return [{"input_ids": ids, "attention_mask": mask, "labels": target}
            for ids, mask, target in zip(prompts["input_ids"], prompts["attention_mask"],
                                         labels["input_ids"])]


def collator(tokenizer, model=None):
    """Pads each batch to its longest row; labels are padded with -100 so padding is not learned
    (padding them with the pad token would teach the model to emit padding). With `model`, the
    batch also carries the decoder inputs (the labels shifted right), as `token_mean_loss` needs."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=LABEL_PAD, padding=True)


def token_mean_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy per label token, averaged over every label token of the optimizer step.

    T5 averages over each micro-batch's own tokens. Split over processes (DDP) or micro-batches
    (gradient accumulation), a token in a short batch then weighs more than one in a long batch;
    and because T5's forward takes **kwargs, the Trainer believes it divides by the step's token
    count and scales its loss by the number of processes. Given as the Trainer's
    `compute_loss_func`, this sums over the micro-batch and divides by the Trainer's count of the
    step's tokens over all micro-batches and processes: the gradient of the mean over the global
    batch, however it is split, and with one process and one micro-batch T5's own mean. (The
    Trainer takes the labels out of the batch for it: the collator supplies the decoder inputs.)
    """
    import torch

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    labels = labels.to(logits.device)
    total = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1),
                                              ignore_index=LABEL_PAD, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (labels != LABEL_PAD).sum()
    return total / count
