"""The miniature experiment (`python -m training experiment`): its smoke run end to end, resuming,
and the pre-training data that must never contain a summary."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


from helpers import synthetic_pairs, write_release_folder
from training.experiment import Preset
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# One thread: on a 2-core machine two threads per process only thrash.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
MODELS = ("mini-original", "mini-instruct", "mini-lora", "mini-prompt")


def _experiment(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", "experiment", "--quiet", *args],
                          env=ENV, capture_output=True, text=True, timeout=300, **kwargs)


def _journal(output: Path) -> dict:
    return json.loads((output / "experiment.json").read_text())["stages"]


def test_smoke_run_writes_every_stage_and_a_second_run_continues_where_it_stopped(tmp_path):
    data = write_release_folder(tmp_path / "dialogsum", train=24, dev=4, test=4)
    output = tmp_path / "mini"
    args = ["--data", str(data), "--output", str(output), "--max-steps", "2", "--limit-test", "4"]
    started = time.monotonic()
    first = _experiment(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert time.monotonic() - started < 120

    for model in MODELS:
        folder = output / model
        assert (folder / "README.md").is_file() and (folder / "training_config.json").is_file()
        card = (folder / "README.md").read_text()
        assert "CC BY-NC-SA 4.0" in card and "non-commercial" in card
        assert "python -m training experiment" in card and "--max-steps 2" in card
        for weights in folder.glob("*.safetensors"):
            assert weights.stat().st_size < 10 * 1024 * 1024  # Spaces refuse larger files without LFS
    assert json.loads((output / "mini-original" / "training_config.json").read_text())["global_step"] == 2
    assert json.loads((output / "mini-instruct" / "training_config.json").read_text())["global_step"] == 2
    index = json.loads((output / "mini-instruct" / "model.safetensors.index.json").read_text())
    assert index["weight_map"], "full models are stored as shards"

    results = json.loads((output / "results.json").read_text())
    rows = {r["model"]: r for r in results["aggregate"]}
    assert set(rows) == {*MODELS, "longest-3"}
    for model, row in rows.items():
        assert row["n"] == 4 and row["errors"] == 0, (model, row["error"])
        assert 0 <= row["distinct"] <= 1 and 0 <= row["repetitive"] <= 1 and "rouge1_shuffled" in row
    paper = {r["model"]: r for r in results["paper_scoring"]["aggregate"]}
    assert results["paper_scoring"]["settings"]["reference"] == "summary1"
    assert results["paper_scoring"]["settings"]["use_stemmer"] is True
    assert set(paper) == set(rows)
    # The repetition guard is in the folders (every user decodes the same way), and the table
    # also shows the models without it.
    for model in ("mini-original", "mini-instruct"):
        generation = json.loads((output / model / "generation_config.json").read_text())
        assert generation["no_repeat_ngram_size"] == Preset.no_repeat_ngram_size
    unguarded = results["without_repetition_guard"]
    assert {r["model"] for r in unguarded["aggregate"]} == set(MODELS)
    assert unguarded["settings"]["reference"] == "summary1"
    assert "--no-repeat-ngram-size 0" in (output / "RESULTS.md").read_text()
    assert "rows" not in results, "per-dialogue rows quote DialogSum and must not be written"
    assert results["training"]["mini-lora"]["trainable_parameters"] < \
        results["training"]["mini-instruct"]["trainable_parameters"]
    table = (output / "RESULTS.md").read_text()
    assert all(f"| {m} |" in table for m in rows)

    # The registry it wrote loads every model through the summarizer, as the app does.
    from summarizer.data import load_split
    from summarizer.generation import summarize
    from summarizer.registry import Registry

    registry = Registry.from_file(output / "models.toml")
    example = load_split(str(data), "test", limit=1)
    for result in summarize(registry, list(rows), example):
        assert result.error is None and result.summary is not None, (result.model, result.error)

    # Interrupted after instruct: lora and the evaluation are missing. A second run redoes only those.
    import shutil
    shutil.rmtree(output / "mini-lora")
    (output / "results.json").unlink()
    second = _experiment(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[instruct] done" in second.stderr and "[lora] running" in second.stderr
    stages = _journal(output)
    assert stages["instruct"]["attempts"] == 1 and stages["original"]["attempts"] == 1
    assert stages["lora"]["attempts"] == 2 and stages["evaluate"]["attempts"] == 2
    assert (output / "mini-lora" / "adapter_model.safetensors").is_file()
    assert (output / "results.json").is_file()


def test_killed_pretraining_resumes_from_its_last_complete_checkpoint(tmp_path):
    from training.checkpoints import latest_complete_checkpoint

    data = write_release_folder(tmp_path / "dialogsum", train=24, dev=2, test=2)
    output = tmp_path / "mini"
    args = [sys.executable, "-m", "training", "experiment", "--quiet", "--data", str(data),
            "--output", str(output), "--until", "original", "--max-steps", "40", "--save-steps", "5"]
    process = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed_after = time.monotonic() + 120, None
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = latest_complete_checkpoint(output / "mini-original")
        if checkpoint is not None:
            os.kill(process.pid, signal.SIGKILL)
            killed_after = int(checkpoint.name.split("-")[1])
            break
        time.sleep(0.02)
    process.wait(timeout=30)
    assert killed_after is not None and killed_after < 40, "pre-training ended before it could be killed"
    assert not (output / "mini-original").exists(), "a killed stage must not look finished"

    resumed = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    step = int(re.search(r"resuming from .*checkpoint-(\d+)", resumed.stderr).group(1))
    assert step >= killed_after
    assert json.loads((output / "mini-original" / "training_config.json").read_text())["global_step"] == 40
    stages = _journal(output)
    assert stages["original"]["attempts"] == 2 and stages["original"].get("finished")
    assert "instruct" not in stages  # --until original stops there


def test_bad_arguments_fail_in_one_line(tmp_path):
    bad_stage = _experiment("--until", "everything", "--output", str(tmp_path / "x"))
    assert bad_stage.returncode == 2 and len(bad_stage.stderr.strip().splitlines()) == 1
    missing = _experiment("--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1].startswith("error:")


def test_pretraining_data_never_contains_a_summary():
    from summarizer.data import Example
    from training.builders import train_t5_tokenizer
    from training.pretrain import SPEAKER_TAGS, PretrainConfig, pretraining_examples

    pairs = synthetic_pairs(40)
    examples = [Example(p["id"], p["dialogue"], (p["summary"] + " zebrafinch",), p["topic"]) for p in pairs]
    tokenizer = train_t5_tokenizer([e.dialogue for e in examples] + ["zebrafinch"] * 3, vocab_size=300,
                                   whole_pieces=SPEAKER_TAGS, add_frequent_words=False)
    assert tokenizer.tokenize("#Person1#: hi #Person2#'s") [:1] == ["▁#Person1#"]
    assert "▁#Person2#" in tokenizer.tokenize("#Person1#: hi #Person2#'s")
    rows = pretraining_examples(examples, tokenizer, PretrainConfig(window_tokens=24), 200, seed=3)
    texts = [tokenizer.decode(r["input_ids"]) + tokenizer.decode(r["labels"]) for r in rows]
    assert not any("zebrafinch" in t for t in texts)
    topics = [r for r in rows if "topic" in tokenizer.decode(r["input_ids"])]
    assert 0.1 < len(topics) / len(rows) < 0.4  # topic_share 0.25
    repairs = [r for r in rows if r not in topics]
    sentinel = tokenizer.convert_tokens_to_ids("<extra_id_0>")
    assert all(sentinel in r["input_ids"] and sentinel not in r["labels"] for r in repairs)
    assert rows == pretraining_examples(examples, tokenizer, PretrainConfig(window_tokens=24), 200, seed=3)
