"""The model card (README.md) written into every output folder."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path

from summarizer.registry import is_hub_id
from summarizer.templates import EXPERIMENT, Template


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def plot_losses(curve: list[tuple[int, float]], path) -> bool:
    """The (step, loss) curve as a PNG beside the card: easier to judge a run by than numbers."""
    if len(curve) < 2:
        return False
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.2), dpi=100)
    axis.plot([step for step, _ in curve], [loss for _, loss in curve], marker=".")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def model_card(*, method: str, kind: str, base: str, data: str, n_train: int, settings, config,
               trainable: int, total: int, seconds: float, global_step: int,
               resumed_from: str | None, final_loss: float | None, rouge: dict | None,
               eval_description: str,
               registry_entry: str, loss_plot: str | None = None, processes: int = 1,
               template: Template = EXPERIMENT) -> str:
    hyper = {**asdict(config), **{k: v for k, v in asdict(settings).items()
                                  if k not in ("base", "data", "output", "name", "overwrite",
                                               "resume", "prompt")}}
    rows = "\n".join(f"| `{k}` | `{list(v) if isinstance(v, tuple) else v}` |"
                     for k, v in hyper.items())
    if rouge:
        rouge_text = (f"Zero-shot, greedy decoding, on {eval_description} "
                      f"(`summarizer.evaluation`, all references):\n\n"
                      "| ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum |\n|---|---|---|---|\n"
                      f"| {rouge['rouge1']:.4f} | {rouge['rouge2']:.4f} | {rouge['rougeL']:.4f} "
                      f"| {rouge['rougeLsum']:.4f} |")
    else:
        rouge_text = "Not evaluated (`--limit-eval 0`)."
    resumed = f" (resumed from `{resumed_from}`; the time is this session's)" if resumed_from else ""
    loss = f"{final_loss:.4f}" if final_loss is not None else "n/a"
    batch = settings.per_device_train_batch_size * settings.gradient_accumulation_steps * processes
    parallel = f" on {processes} processes (DDP)" if processes > 1 else ""
    hub_base = base if is_hub_id(base) else None
    return f"""---
{f"base_model: {hub_base}{chr(10)}" if hub_base else ""}library_name: {"peft" if kind in ("lora", "prompt-tuning") else "transformers"}
tags: [summarization, dialogsum, {method}]
---

# {method} on DialogSum

- **Method:** {method} (registry kind `{kind}`)
- **Base model:** {_shown(base)}
- **Data:** {_shown(data)}, {n_train} training rows
- **Prompt template:** `{template.name}` (`summarizer.templates`; the registry entry below makes it the model's default): `{json.dumps(template.text, ensure_ascii=False)}`
- **Training:** {global_step} optimizer steps of {batch} examples{parallel}, {duration(seconds)}{resumed}; last logged loss {loss}
- **Written:** {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC
{f"{chr(10)}![training loss]({loss_plot}){chr(10)}" if loss_plot else ""}
## Parameters

| trainable | all | trainable % |
|---:|---:|---:|
| {trainable:,} | {total:,} | {100 * trainable / total:.3f}% |

## ROUGE

{rouge_text}

## Hyperparameters

| setting | value |
|---|---|
{rows}

## Use

Add to the registry (`models.toml`):

```toml
{registry_entry.strip()}
```
"""


def short_location(location: str) -> str:
    """A hub id or a relative path as it is; an absolute local path by its last part: the card and
    the model's description travel (a zip from the page, a push to the hub) and the machine's own
    paths mean nothing there."""
    if is_hub_id(location) or not Path(location).expanduser().is_absolute():
        return location
    return Path(location).name


def _shown(location: str) -> str:
    short = short_location(location)
    if short == location:
        return f"`{location}`"
    return f"`{short}` (a local {'file' if Path(location).is_file() else 'folder'})"
