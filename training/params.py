"""Trainable and total parameter counts of each method, from an architecture's config alone.

The model is built on PyTorch's `meta` device: every tensor has a shape but no storage, so the
counts for flan-t5-large take a few seconds and no memory, and no weights are downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from summarizer.errors import UserError

from .methods import get_method


@dataclass(frozen=True)
class ParamCount:
    arch: str
    method: str
    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total

    def to_dict(self) -> dict:
        return {"arch": self.arch, "method": self.method, "trainable": self.trainable,
                "all": self.total, "percent": round(self.percent, 3)}

    def table(self) -> str:
        return (f"{'architecture':<14}{'method':<15}{'trainable':>14}{'all':>15}{'trainable %':>13}\n"
                f"{self.arch:<14}{self.method:<15}{self.trainable:>14,}{self.total:>15,}"
                f"{self.percent:>12.3f}%")


def count_parameters(model) -> tuple[int, int]:
    """(trainable, all); tied weights (T5's shared input embeddings) count once."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total


def meta_t5(arch: str):
    """A FLAN-T5 of architecture `arch` on the meta device, lm_head untied as in the checkpoints."""
    import torch
    from transformers import T5ForConditionalGeneration

    from training.builders import architecture_config

    try:
        config = architecture_config(arch)
    except ValueError as err:
        raise UserError(str(err)) from None
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
        # transformers 5 ties lm_head to `shared` for a model built from a config in memory
        # (training.builders.build_random_t5 unties it with random values; meta has no values).
        if model.lm_head.weight is model.shared.weight:
            model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.shared.weight))
    return model


def method_parameters(arch: str, method: str, **overrides) -> ParamCount:
    """Counts for `method` on `arch`; `overrides` set fields of the method's Config (e.g. lora_r)."""
    import warnings

    import torch

    module = get_method(method)
    config = module.Config(**overrides)
    model = meta_t5(arch)
    if method != "full":
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # a PEFT deprecation notice, not ours
        model = module.wrap(model, config, None)  # no base: prompt tuning initialises at random
    trainable, total = count_parameters(model)
    return ParamCount(arch, method, trainable, total)
