"""The DialogSum release beside the checkout (../shared/data/dialogsum): loaded, scored, baselined.

The data is CC BY-NC-SA and never copied into the project; these tests skip where it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from summarizer.cli import main
from summarizer.data import load_split

RELEASE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dialogsum"
pytestmark = pytest.mark.skipif(not (RELEASE / "dialogsum.test.jsonl").is_file(),
                                reason=f"DialogSum release not found at {RELEASE}")


def test_release_split_sizes_and_references():
    assert len(load_split(str(RELEASE), "train")) == 12_460
    assert len(load_split(str(RELEASE), "dev")) == 500
    test = load_split(str(RELEASE), "test")
    assert len(test) == 500 and all(len(e.references) == 3 for e in test)


def test_score_a_500_line_predictions_file(tmp_path, capsys):
    test = load_split(str(RELEASE), "test")
    predictions = tmp_path / "pred.txt"
    predictions.write_text("\n".join(e.references[0].replace("\n", " ") for e in test) + "\n")
    assert main(["score", "--data", str(RELEASE), "--split", "test", "--predictions", str(predictions),
                 "--reference", "summary1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 500 and result["rouge1"] > 0.99
    predictions.write_text("\n".join(e.references[0] for e in test[:499]) + "\n")
    assert main(["score", "--data", str(RELEASE), "--split", "test", "--predictions", str(predictions)]) == 2
    assert "has 499 lines but the split has 500 dialogues" in capsys.readouterr().err


def test_longest_three_baseline_on_the_full_test_split(tmp_path, capsys):
    output = tmp_path / "longest3.json"
    assert main(["evaluate", "--models", "longest-3", "--data", str(RELEASE), "--split", "test",
                 "--output", str(output)]) == 0
    row = json.loads(output.read_text())["aggregate"][0]
    assert row["n"] == 500 and 0.2 < row["rouge1"] < 0.35 and row["rouge2"] < row["rouge1"]
