"""Full fine-tuning: every weight of the base model is trained (the course's "instruct" model)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option

NAME = "full"
KIND = "seq2seq"


@dataclass
class Config:
    """Full fine-tuning hyperparameters (the course experiment's)."""
    learning_rate: float = option(1e-5, "AdamW learning rate; small, as every weight moves")
    weight_decay: float = option(0.01, "AdamW weight decay")
    num_train_epochs: float = option(5.0, "passes over the training rows")
    warmup_steps: int = option(0, "linear warm-up steps before the linear decay")


def wrap(model, config: Config, base: str):
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


def save(model, folder, dtype: str = "float32", max_shard_size: str | None = None,
         state_dict=None) -> None:
    """model.safetensors (or shards and their index) + config.json + generation_config.json: a
    plain seq2seq folder, stored in `dtype`. `state_dict`: the weights gathered from the
    processes when FSDP or DeepSpeed shard them (else the model's own)."""
    import copy

    import torch

    if state_dict is not None:
        state_dict = {k: v.to(getattr(torch, dtype)) for k, v in state_dict.items()}
    elif dtype != "float32":  # a copy: the trained model in memory stays as it was
        model = copy.deepcopy(model).to(getattr(torch, dtype))
    config = model.config
    # transformers 5 always reports T5's embeddings as tied; FLAN-T5's lm_head is its own matrix,
    # and its config says so. Saying so here too keeps the folder loadable by other versions,
    # which would otherwise tie lm_head to the input embeddings (and scale the decoder output).
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        config.tie_word_embeddings = False
    config.use_cache = True  # switched off for training; generation wants the cache back
    model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict,
                          **({"max_shard_size": max_shard_size} if max_shard_size else {}))


def registry_entry(config: Config, base: str) -> dict:
    return {}
