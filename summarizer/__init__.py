"""DialogSum Studio's core: data, prompts, model registry, generation, ROUGE and a CLI."""

from .data import Example, load_split
from .errors import UserError
from .generation import DecodingSettings, Result, summarize
from .prompts import ShotSettings, build_prompt, format_prompt
from .registry import ModelSpec, Registry

__all__ = ["DecodingSettings", "Example", "ModelSpec", "Registry", "Result", "ShotSettings",
           "UserError", "build_prompt", "format_prompt", "load_split", "summarize"]
