"""LoRA: low-rank updates on the attention query and value projections; the base stays frozen."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option

NAME = "lora"
KIND = "lora"


@dataclass
class Config:
    """LoRA hyperparameters (the course experiment's: r=32, alpha=32 on q and v, lr 1e-3)."""
    lora_r: int = option(32, "rank of the update matrices A (r x d) and B (d x r)")
    lora_alpha: int = option(32, "scaling: the update is multiplied by lora_alpha / lora_r")
    target_modules: list[str] = option(["q", "v"], "T5 linear layers that get an update")
    lora_dropout: float = option(0.05, "dropout on the LoRA input")
    bias: str = option("none", "which biases to train", choices=("none", "all", "lora_only"))
    # A much larger rate than full fine-tuning: B starts at zero and only ~1% of weights learn.
    learning_rate: float = option(1e-3, "AdamW learning rate")
    weight_decay: float = option(0.0, "AdamW weight decay")
    num_train_epochs: float = option(5.0, "passes over the training rows (same budget as full)")
    warmup_steps: int = option(0, "linear warm-up steps before the linear decay")


def peft_config(config: Config):
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=config.lora_r, lora_alpha=config.lora_alpha,
                      target_modules=list(config.target_modules), lora_dropout=config.lora_dropout,
                      bias=config.bias)


def wrap(model, config: Config, base: str):
    from peft import get_peft_model

    return get_peft_model(model, peft_config(config))


def save(model, folder, dtype: str = "float32", max_shard_size: str | None = None,
         state_dict=None) -> None:
    """adapter_config.json + adapter_model.safetensors (the base weights are not copied)."""
    # Adapters are small: kept in float32 whatever `dtype` says, so they never need sharding.
    model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)


def registry_entry(config: Config, base: str) -> dict:
    return {"base": base}
