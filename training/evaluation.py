"""ROUGE of a trained output folder, through the summarizer's one evaluation path.

The folder is put in a one-entry registry, exactly as the app would list it, so the score is
measured on what the app loads (and a folder the registry cannot load fails here, not later).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from summarizer.data import Example
from summarizer.errors import ModelLoadError, UserError
from summarizer.evaluation import evaluate
from summarizer.generation import DecodingSettings
from summarizer import rouge
from summarizer.registry import PEFT_KINDS, ModelSpec, Registry
from summarizer.templates import BUILTIN



def folder_spec(folder: str | Path, base: str | None = None, name: str = "trained") -> ModelSpec:
    """The registry entry for an output folder: its kind from the files, an adapter's base from
    --base or else the base recorded in adapter_config.json, its template the one it was trained
    on (training_config.json)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"model folder not found: {folder}")
    template = _trained_template(folder)
    adapter_config = folder / "adapter_config.json"
    if adapter_config.is_file():
        try:
            config = json.loads(adapter_config.read_text())
        except ValueError as err:
            raise ModelLoadError(f"{adapter_config}: not valid JSON ({err})") from None
        kind = PEFT_KINDS.get(config.get("peft_type"))
        if kind is None:
            raise ModelLoadError(f"{folder}: unsupported adapter type {config.get('peft_type')!r}")
        if not base:
            base = config.get("base_model_name_or_path")
            if not base:
                raise UserError(f"{folder}: the adapter names no base model; pass --base")
            # PEFT records a local base by the path it had on the training machine.
            if Path(base).is_absolute() and not Path(base).exists():
                raise UserError(f"{folder}: its base {base} (where it was trained, as "
                                f"adapter_config.json records it) is not here; pass --base")
        return ModelSpec(name=name, kind=kind, path=str(folder.resolve()), base=_location(base),
                         speakers="dialogsum", template=template)
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder}: neither a model (config.json) nor an adapter "
                             f"(adapter_config.json)")
    return ModelSpec(name=name, kind="seq2seq", path=str(folder.resolve()), speakers="dialogsum",
                     template=template)


def _trained_template(folder: Path) -> str | None:
    """The template recorded by `python -m training` (a built-in name, else the text); None for a
    folder trained before templates were recorded: the experiment's, the only one there was."""
    try:
        recorded = json.loads((folder / "training_config.json").read_text()).get("template") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("text"), str):
        return None
    return recorded["name"] if recorded.get("name") in BUILTIN else recorded["text"]


def _location(location: str) -> str:
    path = Path(location).expanduser()
    return str(path.resolve()) if path.exists() else location


def evaluate_spec(spec: ModelSpec, examples: Sequence[Example], batch_size: int = 8,
                  max_new_tokens: int = DecodingSettings.max_new_tokens, progress: bool = True) -> dict:
    """Mean ROUGE-1/2/L/Lsum (fractions) and n over `examples`, zero-shot, greedy."""
    report = evaluate(Registry([spec]), [spec.name], examples,
                      decoding=DecodingSettings(max_new_tokens=max_new_tokens, batch_size=batch_size),
                      progress=progress)
    scores = report.score(spec.name, 0)
    if scores.get("errors"):
        raise ModelLoadError(f"evaluation of {spec.path} failed: {scores['error']}")
    return {k: scores[k] for k in (*rouge.METRICS, "n")}
