"""`python -m summarizer`: every command on tiny models and small fixtures, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import synthetic_pairs, write_jsonl
from summarizer import rouge
from summarizer.cli import main
from summarizer.data import load_split

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_score_json_against_chosen_reference(capsys, release_folder, tmp_path):
    examples = load_split(str(release_folder), "test")
    predictions = tmp_path / "pred.txt"
    predictions.write_text("\n".join(e.references[1] for e in examples) + "\n")
    code, out, _ = run(capsys, "score", "--data", release_folder, "--split", "test",
                       "--predictions", predictions, "--reference", "summary2", "--json")
    result = json.loads(out)
    assert code == 0 and result["n"] == 4 and result["rouge1"] == pytest.approx(1.0)
    code, out, _ = run(capsys, "score", "--data", release_folder, "--split", "test",
                       "--predictions", predictions, "--reference", "summary1", "--json")
    expected = rouge.aggregate(rouge.score(e.references[1], [e.references[0]]) for e in examples)
    assert expected["rouge2"] < 1.0 and json.loads(out)["rouge2"] == pytest.approx(expected["rouge2"])


def test_score_jsonl_predictions_by_id(capsys, release_folder, tmp_path):
    examples = load_split(str(release_folder), "test")
    write_jsonl(tmp_path / "pred.jsonl", [{"id": e.id, "summary": e.references[0]} for e in reversed(examples)])
    code, out, _ = run(capsys, "score", "--data", release_folder, "--predictions", tmp_path / "pred.jsonl",
                       "--reference", "summary1", "--json")
    assert code == 0 and json.loads(out)["rougeLsum"] == pytest.approx(1.0)


def test_score_refuses_wrong_line_count(capsys, release_folder, tmp_path):
    predictions = tmp_path / "pred.txt"
    predictions.write_text("one\ntwo\n")
    code, _, err = run(capsys, "score", "--data", release_folder, "--predictions", predictions)
    assert code == 2 and "has 2 lines but the split has 4 dialogues" in err and len(err.strip().splitlines()) == 1


def test_evaluate_tiny_models_at_zero_one_three_shots(capsys, registry_file, release_folder, tmp_path):
    output = tmp_path / "results.json"
    code, out, _ = run(capsys, "evaluate", "--models", "original,peft-lora,longest-3", "--registry", registry_file,
                       "--data", release_folder, "--split", "test", "--limit", 3, "--shots", "0,1,3",
                       "--max-new-tokens", 5, "--max-prompt-tokens", 100, "--output", output)
    assert code == 0 and "Absolute improvement over original" in out
    report = json.loads(output.read_text())
    assert {(r["model"], r["shots"]) for r in report["aggregate"]} == \
        {(m, s) for m in ("original", "peft-lora", "longest-3") for s in (0, 1, 3)}
    assert all(r["n"] == 3 and 0 <= r["rouge1"] <= 1 for r in report["aggregate"])
    rows = [r for r in report["rows"] if r["model"] == "original"]
    by_shots = {s: [r for r in rows if r["shots"] == s] for s in (0, 1, 3)}
    assert all(r["prompt"].count("Summarize the following conversation.") == 1 for r in by_shots[0])
    assert any(r["prompt"].count("Summarize the following conversation.") == 2 for r in by_shots[1])
    # Three shots do not fit in 100 tokens: some are dropped, with a notice, and the budget holds.
    assert all(r["input_tokens"] <= 100 for r in rows)
    assert any("dropped" in " ".join(r["notices"]) for r in by_shots[3])
    gains = {(g["model"], g["shots"]): g for g in report["improvements_over_original"]}
    lora = report["aggregate"][[(r["model"], r["shots"]) for r in report["aggregate"]].index(("peft-lora", 1))]
    original = report["aggregate"][[(r["model"], r["shots"]) for r in report["aggregate"]].index(("original", 1))]
    assert gains[("peft-lora", 1)]["rouge1"] == pytest.approx(lora["rouge1"] - original["rouge1"])


def test_evaluate_writes_csv(capsys, registry_file, release_folder, tmp_path):
    code, _, _ = run(capsys, "evaluate", "--models", "longest-3", "--registry", registry_file,
                     "--data", release_folder, "--split", "dev", "--output", tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert code == 0 and lines[0].startswith("model,template,shots,id,summary,rouge1") and len(lines) > 4


def test_summarize_from_argument_file_and_stdin(capsys, registry_file, tmp_path, monkeypatch):
    dialogue = synthetic_pairs(1)[0]["dialogue"]
    code, out, _ = run(capsys, "summarize", "--model", "longest-3", "--registry", registry_file, dialogue)
    assert code == 0 and out.strip() == dialogue
    (tmp_path / "d.txt").write_text(dialogue)
    code, out, _ = run(capsys, "summarize", "--model", "original", "--registry", registry_file,
                       "--file", tmp_path / "d.txt", "--max-new-tokens", 4)
    assert code == 0 and out.strip()
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO(dialogue))
    code, out, err = run(capsys, "summarize", "--model", "peft-prompt", "--registry", registry_file,
                         "--max-new-tokens", 4, "--show-prompt")
    assert code == 0 and out.strip() and "Summarize the following conversation." in err


def test_models_json_lists_statuses(capsys, registry_file):
    code, out, _ = run(capsys, "models", "--json", "--registry", registry_file)
    assert code == 0 and {m["name"]: m["state"] for m in json.loads(out)}["peft-lora"] == "ready"


@pytest.mark.parametrize("argv, message", [
    (["summarize", "--model", "longest-3", "   "], "empty dialogue"),
    (["summarize", "--model", "gpt-9", "hi"], "unknown model 'gpt-9'"),
    (["evaluate", "--models", "longest-3", "--data", "/no/such/folder"], "data not found"),
    (["evaluate", "--models", "longest-3", "--shots", "9"], "shots must be between 0 and 5"),
    (["models", "--registry", "broken.toml"], "not valid TOML"),
    (["evaluate", "--models", "longest-3", "--data", "bad.jsonl"], "bad.jsonl:2: not valid JSON"),
])
def test_bad_input_is_one_line_and_nonzero_without_traceback(tmp_path, argv, message):
    (tmp_path / "broken.toml").write_text("[models.x\n")
    (tmp_path / "bad.jsonl").write_text('{"dialogue": "a", "summary": "b"}\n{oops\n')
    process = subprocess.run([sys.executable, "-m", "summarizer", *argv], cwd=tmp_path, capture_output=True,
                             text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                             "SUMMARIZER_REGISTRY": str(ROOT / "models.toml")}, timeout=120)
    assert process.returncode == 2
    assert message in process.stderr and "Traceback" not in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1


def test_every_command_has_help():
    for command in ("summarize", "evaluate", "score", "models"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
