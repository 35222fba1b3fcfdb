"""A stopped job's last complete checkpoint made into a model folder the registry loads.

Only on the visitor's request, and only from a checkpoint `training.checkpoints.is_complete`
accepts; the folder is written atomically, like every training output, with a card that says it
is a checkpoint of a stopped run, not a finished one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from summarizer.errors import UserError
from summarizer.registry import ModelSpec

from . import checkpoints
from .methods import get_method
from .progress import read_progress

# The Trainer's own state in a checkpoint: needed to resume, not to use the model (and pickles).
_TRAINER_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json",
                  "training_args.bin", checkpoints.MARKER)


def export_checkpoint(job_folder: Path, job: dict, registry_file: Path) -> ModelSpec:
    try:
        request = json.loads((job_folder / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"job {job['id']} has no settings on record; there is nothing to register") from None
    settings = request["settings"]
    output = Path(settings["output"])
    latest = checkpoints.latest_complete_checkpoint(output)
    if latest is None:
        raise UserError(f"job {job['id']} stopped before its first complete checkpoint; "
                        f"there is nothing to register")
    kind = get_method(request["method"]).KIND
    step = int(latest.name.rsplit("-", 1)[1])
    with checkpoints.atomic_folder(output) as folder:
        for path in latest.iterdir():
            if path.is_file() and path.name not in _TRAINER_FILES and not path.name.startswith("rng_state"):
                shutil.copy2(path, folder / path.name)
        if kind == "seq2seq":
            _keep_untied_head(folder, Path(settings["base"]))
        scores = next((r for r in read_progress(job_folder).get("rouge", []) if r["step"] == step), {})
        (folder / "README.md").write_text(_card(job, step, settings, scores), encoding="utf-8")
    return ModelSpec(job["name"], kind, str(output), settings["base"] if kind != "seq2seq" else None,
                     description=f"{job['method']} of {job['base']}, stopped: its checkpoint at step "
                                 f"{step} of {settings['max_steps']} (job {job['id']})",
                     speakers="dialogsum")


def _keep_untied_head(folder: Path, base: Path) -> None:
    """A checkpoint's config says what the model in memory reported; transformers 5 reports T5's
    head as tied, and a tied head would load as a different model (training.methods.full.save)."""
    try:
        untied = json.loads((base / "config.json").read_text()).get("tie_word_embeddings") is False
    except (OSError, ValueError):
        return
    config_path = folder / "config.json"
    if untied and config_path.is_file():
        config = json.loads(config_path.read_text())
        config.update(tie_word_embeddings=False, use_cache=True)
        config_path.write_text(json.dumps(config, indent=2))


def _card(job: dict, step: int, settings: dict, scores: dict) -> str:
    rouge = (f"Dev ROUGE-1 {scores['rouge1']:.4f}, ROUGE-L {scores['rougeL']:.4f} on the first "
             f"{scores['n']} evaluation rows, scored when the checkpoint was written."
             if "rouge1" in scores else "Not evaluated.")
    return f"""# {job['name']}: a stopped training run's checkpoint

- **Method:** {job['method']}, base `{job['base']}`
- **Stopped:** its last complete checkpoint, step {step} of {settings['max_steps']} (job `{job['id']}`)
- **Data:** {"an uploaded file" if job.get("data") == "upload" else "DialogSum train"}

{rouge}

Registered at the visitor's request; a finished run's card has the full evaluation.
"""
