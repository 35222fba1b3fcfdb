"""The shipped miniature models (assets/mini/): they load through the root registry, as the app
loads them, and tell the experiment's story on DialogSum validation dialogues they never saw."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from summarizer.data import load_split
from summarizer.evaluation import evaluate
from summarizer.generation import DecodingSettings
from summarizer.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "assets" / "mini"
RELEASE = ROOT.parent / "shared" / "data" / "dialogsum"
MODELS = ["mini-original", "mini-instruct", "mini-lora", "mini-prompt", "longest-3"]
# The experiment commits stage by stage over several sittings; these checks need all of it.
pytestmark = pytest.mark.skipif(not (MINI / "results.json").is_file(),
                                reason="the miniature experiment has not reached its evaluation "
                                       "stage yet (python -m training experiment)")


def shipped_files() -> list[Path]:
    """What a clone gets: the tracked files (training checkpoints beside them are ignored)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "assets/mini"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the whole folder
        return [p for p in MINI.rglob("*") if p.is_file() and ".checkpoints" not in str(p)]
    return [ROOT / name for name in listed.split("\0") if name]


def test_every_shipped_file_fits_a_space_and_every_card_names_the_licence():
    files = shipped_files()
    assert {"mini-instruct", "mini-lora", "mini-prompt"} <= {p.parent.name for p in files}
    for path in files:
        assert path.stat().st_size < 10 * 1024 * 1024, f"{path} is over Spaces' 10 MB limit"
    assert sum(p.stat().st_size for p in files) < 60 * 1024 * 1024
    for model in MODELS[:-1]:
        card = (MINI / model / "README.md").read_text()
        assert "CC BY-NC-SA 4.0" in card and "non-commercial" in card
        assert "python -m training experiment" in card


@pytest.mark.skipif(not (RELEASE / "dialogsum.dev.jsonl").is_file(),
                    reason=f"DialogSum release not found at {RELEASE}")
def test_shipped_models_tell_the_experiments_story_on_30_validation_dialogues():
    registry = Registry.from_file(ROOT / "models.toml")
    examples = load_split(str(RELEASE), "validation", limit=30)
    report = evaluate(registry, MODELS, examples, decoding=DecodingSettings(batch_size=16),
                      progress=False)
    scores = {row["model"]: row for row in report.aggregate}
    for model, row in scores.items():
        assert row["errors"] == 0 and row["n"] == 30, (model, row["error"])
    assert scores["mini-instruct"]["rouge1"] > scores["longest-3"]["rouge1"]
    assert scores["mini-original"]["rouge1"] < scores["mini-instruct"]["rouge1"]
    # It reads its input: distinct summaries, closer to their own reference than to another's.
    assert scores["mini-instruct"]["distinct"] >= 0.9
    assert scores["mini-instruct"]["rouge1"] - scores["mini-instruct"]["rouge1_shuffled"] >= 0.05


def test_results_file_matches_the_shipped_models():
    results = json.loads((MINI / "results.json").read_text())
    assert {row["model"] for row in results["aggregate"]} == set(MODELS)
    assert all(row["n"] == 500 for row in results["aggregate"])
    assert "rows" not in results


@pytest.mark.parametrize("name", ["mini-original", "mini-instruct"])
def test_shipped_models_load_with_their_own_head_and_no_tie_warning(name, capfd):
    """The checkpoints store an output head unlike the embedding: it loads as stored, outputs
    unchanged against transformers' own (warning) load, and the tie warning is gone."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from summarizer.checkpoints import has_own_head, load_seq2seq

    folder = ROOT / "assets" / "mini" / name
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is False
    assert has_own_head(folder)
    capfd.readouterr()
    ours = load_seq2seq(str(folder), use_safetensors=True, dtype="float32")
    assert "tie" not in capfd.readouterr().err.lower()
    plain = AutoModelForSeq2SeqLM.from_pretrained(str(folder), use_safetensors=True, dtype="float32")
    assert not torch.equal(ours.lm_head.weight, ours.shared.weight)
    assert ours.encoder.embed_tokens.weight is ours.shared.weight
    assert ours.decoder.embed_tokens.weight is ours.shared.weight
    mine, theirs = ours.state_dict(), plain.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    ids = torch.randint(2, ours.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    assert torch.equal(ours.generate(ids, max_new_tokens=10, do_sample=False),
                       plain.generate(ids, max_new_tokens=10, do_sample=False))
