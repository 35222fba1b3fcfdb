"""Prompt tuning (soft prompts): trainable vectors placed before the encoder input; nothing else
of the model changes, so one base serves any number of soft prompts."""

from __future__ import annotations

from dataclasses import dataclass

from summarizer.prompts import INSTRUCTION

from ..config import option

NAME = "prompt-tuning"
KIND = "prompt-tuning"


@dataclass
class Config:
    """Prompt-tuning hyperparameters.

    20 virtual tokens: Lester et al. (2021) found 20 close to the best for T5 and more give little.
    Initialised from the instruction text (PromptTuningInit.TEXT), so training starts from the
    prompt the model already follows instead of from noise.
    Learning rate 3e-2: Lester et al. used 0.3 with Adafactor, whose updates scale with the
    parameter's size; with AdamW (the Trainer's optimizer) each step moves a weight by about the
    learning rate, and 0.3 overshoots T5's embedding values, so we take PEFT's usual 3e-2.
    """
    num_virtual_tokens: int = option(20, "soft-prompt length in tokens")
    init_text: str = option(INSTRUCTION.strip(), "text whose token embeddings start the soft prompt "
                                                 "(empty: random init)")
    learning_rate: float = option(3e-2, "AdamW learning rate")
    weight_decay: float = option(0.0, "AdamW weight decay")
    num_train_epochs: float = option(5.0, "passes over the training rows (same budget as full)")
    warmup_steps: int = option(0, "linear warm-up steps before the linear decay")


def peft_config(config: Config, base: str | None):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    text_init = bool(config.init_text) and base is not None
    return PromptTuningConfig(
        task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=config.num_virtual_tokens,
        # PEFT defaults to 2 for seq2seq, but prompt tuning only reads the encoder half: 1 avoids
        # training (and counting) vectors that never reach the model.
        num_transformer_submodules=1,
        prompt_tuning_init=PromptTuningInit.TEXT if text_init else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=config.init_text if text_init else None,
        tokenizer_name_or_path=base if text_init else None,
    )


def wrap(model, config: Config, base: str | None):
    from peft import get_peft_model

    return get_peft_model(model, peft_config(config, base))


def save(model, folder, dtype: str = "float32", max_shard_size: str | None = None,
         state_dict=None) -> None:
    """adapter_config.json + adapter_model.safetensors (`prompt_embeddings`)."""
    # Adapters are small: kept in float32 whatever `dtype` says, so they never need sharding.
    model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)


def registry_entry(config: Config, base: str) -> dict:
    return {"base": base}
