"""Where a run writes, what counts as a finished checkpoint, and the atomic final output.

A killed run can leave a half-written checkpoint (the Trainer writes checkpoint-N in place, the
weights first and trainer_state.json last) or a half-written output folder. Neither may be taken
for finished work:
- a checkpoint is complete only when a marker file written after the Trainer's save is there,
  trainer_state.json parses and names the same step, and the weights' safetensors file reads;
- the final model is written to a temporary sibling folder and renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from summarizer.errors import UserError
from summarizer.registry import PEFT_KINDS

MARKER = "checkpoint-complete.json"
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(output: Path) -> Path:
    """Checkpoints live beside the output folder, which only exists once training has finished."""
    return output.with_name(output.name + ".checkpoints")


def check_output(output: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to touch earlier work unless asked to; runs before any long work."""
    if overwrite and resume:
        raise UserError("--overwrite starts afresh and --resume continues: choose one")
    if output.exists() and not output.is_dir():
        raise UserError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not (overwrite or resume):
        raise UserError(f"output folder {output} is not empty; pass --overwrite to replace it "
                        f"or --resume to continue its training")
    checkpoints = checkpoint_dir(output)
    if checkpoints.is_dir() and any(checkpoints.iterdir()) and not (overwrite or resume):
        raise UserError(f"{checkpoints} holds checkpoints of an earlier run; pass --resume to "
                        f"continue it or --overwrite to start afresh")


def clear_checkpoints(output: Path) -> None:
    shutil.rmtree(checkpoint_dir(output), ignore_errors=True)


def write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a reader sees the old text or the new, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def mark_complete(folder: Path, step: int) -> None:
    write_atomically(folder / MARKER, json.dumps({"global_step": step}, indent=2))


def is_complete(folder: Path) -> bool:
    """True when the checkpoint was fully written and its files read back."""
    match = _CHECKPOINT.match(folder.name)
    if not match or not folder.is_dir():
        return False
    step = int(match.group(1))
    try:
        marker = json.loads((folder / MARKER).read_text())
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    if marker.get("global_step") != step or state.get("global_step") != step:
        return False
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    return bool(weights) and all(_safetensors_readable(w) for w in weights)


def _safetensors_readable(path: Path) -> bool:
    """The header parses and every tensor's bytes are in the file (a truncated file fails)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            if keys:
                handle.get_slice(keys[-1])
        return bool(keys)
    except Exception:
        return False


def check_method(checkpoint: Path, kind: str) -> None:
    """A checkpoint of another method cannot be continued (e.g. --resume after switching to lora)."""
    found = "seq2seq"
    if (checkpoint / "adapter_config.json").is_file():
        try:
            peft_type = json.loads((checkpoint / "adapter_config.json").read_text()).get("peft_type")
        except ValueError:
            peft_type = None
        found = PEFT_KINDS.get(peft_type, str(peft_type))
    if found != kind:
        raise UserError(f"{checkpoint} is a {found} checkpoint, this run trains {kind}; "
                        f"use another --output or --overwrite")


def latest_complete_checkpoint(output: Path) -> Path | None:
    """The complete checkpoint with the highest step; partial ones are skipped."""
    folder = checkpoint_dir(output)
    if not folder.is_dir():
        return None
    candidates = [p for p in folder.iterdir() if _CHECKPOINT.match(p.name)]
    for candidate in sorted(candidates, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)),
                            reverse=True):
        if is_complete(candidate):
            return candidate
    return None


def discard_partial(output: Path) -> list[Path]:
    """Delete unfinished checkpoints before a resumed run. They cannot be used, and left in place
    they would confuse the Trainer's rotation (save_total_limit keeps the highest steps, so it
    would delete the complete checkpoints and keep the broken ones)."""
    folder = checkpoint_dir(output)
    if not folder.is_dir():
        return []
    partial = [p for p in folder.iterdir() if _CHECKPOINT.match(p.name) and not is_complete(p)]
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return partial


@contextmanager
def atomic_folder(output: Path):
    """Yield a temporary sibling folder; on success it replaces `output` by rename, on failure
    it is deleted, so `output` is always either the old folder or the complete new one."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=output.name + ".tmp-", dir=output.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the finished folder should read like any other
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if output.exists():
        old = Path(tempfile.mkdtemp(prefix=output.name + ".old-", dir=output.parent))
        os.rename(output, old / output.name)
    os.rename(tmp, output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
