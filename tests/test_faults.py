"""Faults: a training run killed with SIGKILL resumes from its last complete checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import synthetic_pairs, write_jsonl
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
MAX_STEPS = 600


def _training(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "training", "lora", *args]


def test_sigkilled_training_resumes_from_its_last_complete_checkpoint(tmp_path, tiny_models):
    from training.checkpoints import checkpoint_dir, latest_complete_checkpoint

    data = write_jsonl(tmp_path / "train.jsonl", synthetic_pairs(120))
    output = tmp_path / "adapter"
    args = ["--base", str(tiny_models["base"]), "--data", str(data), "--output", str(output),
            "--max-steps", str(MAX_STEPS), "--save-steps", "50", "--limit-eval", "4",
            "--eval-max-new-tokens", "4", "--learning-rate", "1e-2", "--lora-r", "4", "--quiet"]
    # One thread: a tiny model gains nothing from two, and on a busy machine two threads per
    # process thrash (a step can take a second instead of 15 ms).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_training(args), cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    killed_after = None
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = latest_complete_checkpoint(output)
        if checkpoint is not None:
            os.kill(process.pid, signal.SIGKILL)  # no chance to clean up, as with a lost machine
            killed_after = int(checkpoint.name.split("-")[1])
            break
        time.sleep(0.02)
    process.wait(timeout=30)
    assert killed_after is not None and killed_after < MAX_STEPS, "run ended before it could be killed"
    assert process.returncode == -signal.SIGKILL
    assert not output.exists(), "a killed run must not leave anything that looks like a finished model"

    without_resume = subprocess.run(_training(args), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert without_resume.returncode == 2 and "--resume" in without_resume.stderr

    resumed = subprocess.run(_training([*args, "--resume"]), cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    step = int(re.search(r"resuming from .*checkpoint-(\d+)", resumed.stderr).group(1))
    assert step >= killed_after
    final = latest_complete_checkpoint(output)
    assert json.loads((final / "trainer_state.json").read_text())["global_step"] == MAX_STEPS
    assert (output / "adapter_model.safetensors").is_file() and (output / "README.md").is_file()
    assert checkpoint_dir(output).is_dir()

    from summarizer.data import Example
    from summarizer.generation import DecodingSettings, summarize
    from summarizer.registry import ModelSpec, Registry
    registry = Registry([ModelSpec("resumed", "lora", str(output), base=str(tiny_models["base"]))])
    assert registry.status("resumed").state == "ready"
    result = summarize(registry, ["resumed"], [Example("e", synthetic_pairs(1)[0]["dialogue"])],
                       decoding=DecodingSettings(max_new_tokens=4))[0]
    assert result.error is None and result.summary is not None
