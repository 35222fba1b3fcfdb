"""One module per training method, each the same shape (as PEFT's tuners are):

- `NAME`: the subcommand; `KIND`: the registry kind of its output;
- `Config`: a dataclass of its hyperparameters, defaults from the course experiment;
- `wrap(model, config, base)`: the model to train (the trainable part set up);
- `save(model, folder, dtype="float32", max_shard_size=None, state_dict=None)`: weights in the
  folder layout the registry loads (`state_dict`: the weights gathered from the processes when
  FSDP or DeepSpeed shard them; adapters stay float32 and unsharded whatever `dtype` says);
- `registry_entry(config, base)`: the extra fields of its models.toml entry (`base` for adapters).
"""

from __future__ import annotations

from types import ModuleType

from . import full, lora, prompt_tuning

METHODS: dict[str, ModuleType] = {m.NAME: m for m in (full, lora, prompt_tuning)}


def get_method(name: str) -> ModuleType:
    from summarizer.errors import UserError

    if name not in METHODS:
        raise UserError(f"unknown training method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
