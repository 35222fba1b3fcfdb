"""Prompt templates: built-ins, user templates and their refusals, rendering (shots and budget
included), generation over models x templates, the CLI's --prompt, and training on a template."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import synthetic_pairs
from summarizer.cli import main
from summarizer.data import Example
from summarizer.errors import RegistryError, UserError
from summarizer.prompts import ShotSettings, WordCounter, build_prompt, format_prompt, format_shot
from summarizer.templates import (BUILTIN, EXPERIMENT, FLAN_COMMIT, MAX_TEMPLATE_CHARS, Template,
                                  resolve_template, resolve_templates)

ROOT = Path(__file__).resolve().parent.parent
LAB = "Dialogue:\n\n{dialogue}\n\nWhat was going on?"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _examples(n=2, seed=3):
    return [Example(f"ex_{i}", r["dialogue"], (r["summary"],), r["topic"])
            for i, r in enumerate(synthetic_pairs(n, seed=seed))]


# ---------------------------------------------------------------- templates


def test_experiment_template_is_todays_prompt_byte_for_byte():
    dialogue = "#Person1#: Hi.\n#Person2#: Hello {there}."
    today = "Summarize the following conversation.\n\n" + dialogue + "\n\nSummary: "
    assert EXPERIMENT.render(dialogue) == format_prompt(dialogue) == today
    assert resolve_template("experiment") is EXPERIMENT


def test_prompts_command_lists_every_builtin_with_its_text_and_flan_source(capsys):
    code, out, _ = run(capsys, "prompts", "--json")
    listed = json.loads(out)
    assert code == 0 and FLAN_COMMIT in listed["flan_source"]
    by_name = {t["name"]: t["text"] for t in listed["templates"]}
    assert by_name == {name: t.text for name, t in BUILTIN.items()}
    assert by_name["lab-going-on"] == LAB
    flan = [name for name in by_name if name.startswith("flan-")]
    assert len(flan) >= 7 and all(by_name[n].count("{dialogue}") == 1 for n in flan)
    code, out, _ = run(capsys, "prompts")
    assert code == 0 and all(name in out for name in BUILTIN) and FLAN_COMMIT in out
    assert json.dumps(EXPERIMENT.text) in out  # the trailing space and line breaks shown


@pytest.mark.parametrize("text, message", [
    ("", "cannot be empty"),
    ("   \n", "cannot be empty"),
    ("Summarize the following long conversation for me, please, in a few words.", "exactly once"),
    ("{dialogue} and again {dialogue}", "2 times"),
    ("x" * MAX_TEMPLATE_CHARS + "{dialogue}", f"at most {MAX_TEMPLATE_CHARS} characters"),
    ("experimnt", "unknown prompt template 'experimnt'"),
])
def test_bad_templates_are_refused_in_one_line(text, message):
    with pytest.raises(UserError, match=message) as error:
        resolve_template(text)
    assert "\n" not in str(error.value)


def test_braces_are_literal_and_a_written_template_is_named_by_its_hash():
    text = "{__class__} {0} {} {{x}} %s\n{dialogue}\n{summary}"
    template = resolve_template(text)
    assert template.render("D") == "{__class__} {0} {} {{x}} %s\nD\n{summary}"
    assert template.name == "custom-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    assert not template.builtin
    # The placeholder inside the dialogue is not a placeholder: only the template is split.
    assert EXPERIMENT.render("say {dialogue}").count("{dialogue}") == 1
    # Text identical to a built-in is the built-in; repeats are kept once, in order.
    assert resolve_template(LAB).name == "lab-going-on"
    assert [t.name for t in resolve_templates(["lab-going-on", "experiment", LAB])] == \
        ["lab-going-on", "experiment"]


def test_shots_are_rendered_in_the_template():
    pool, target = _examples(4, seed=5), _examples(1, seed=9)[0]
    lab = BUILTIN["lab-going-on"]
    prompt = build_prompt(target.dialogue, pool[:2], WordCounter(), 10_000, lab)
    expected = "".join(f"Dialogue:\n\n{s.dialogue}\n\nWhat was going on?\n{s.summary}\n\n\n" for s in pool[:2])
    assert prompt.text == expected + lab.render(target.dialogue) and prompt.template == "lab-going-on"
    # The experiment's shots stay exactly as before templates: the summary right after "Summary: ".
    assert format_shot(pool[0]) == format_prompt(pool[0].dialogue) + pool[0].summary + "\n\n\n"


def test_budget_holds_for_any_template():
    counter = WordCounter()
    long_dialogue = " ".join(r["dialogue"] for r in synthetic_pairs(20))
    template = resolve_template("Read this carefully, every single word of it:\n{dialogue}\n"
                                "Now write one short sentence about what happened.")
    prompt = build_prompt(long_dialogue, _examples(2), counter, 40, template)
    assert prompt.dialogue_truncated and prompt.n_tokens <= 40 and len(prompt.dropped_shot_ids) == 2
    assert prompt.text.startswith("Read this carefully") and prompt.text.endswith("what happened.")
    assert prompt.n_tokens > counter.count(template.render(""))  # some of the dialogue is kept


# ---------------------------------------------------------------- registry


def test_registry_entry_names_its_default_template(tmp_path):
    from summarizer.registry import ModelSpec, Registry, load_specs

    custom = "Résumé des Gesprächs:\n{dialogue}\n\"TL;DR\":"
    specs = [ModelSpec("a", "extractive", template="lab-going-on"), ModelSpec("b", "extractive"),
             ModelSpec("c", "extractive", template=custom)]
    path = tmp_path / "models.toml"
    path.write_text("\n".join(s.to_toml() for s in specs), encoding="utf-8")
    loaded = {s.name: s for s in load_specs(path)}
    assert loaded["a"].default_template.name == "lab-going-on"
    assert loaded["b"].template is None and loaded["b"].default_template is EXPERIMENT
    assert loaded["c"].default_template.text == custom
    path.write_text('[models.x]\nkind = "extractive"\ntemplate = "Summary please"\n')
    with pytest.raises(RegistryError, match="models.x.template: unknown prompt template"):
        Registry.from_file(path)


def test_shipped_trained_models_default_to_the_experiment_template():
    from summarizer.registry import Registry

    registry = Registry.from_file(ROOT / "models.toml")
    trained = ["instruct", "peft-lora", "peft-prompt", "mini-instruct", "mini-lora", "mini-prompt"]
    assert all(registry.spec(n).template == "experiment" for n in trained)
    assert {registry.spec(n).default_template.name for n in registry.names()} == {"experiment"}


def test_models_json_names_each_default_template(capsys, tmp_path):
    from summarizer.registry import ModelSpec

    path = tmp_path / "models.toml"
    path.write_text(ModelSpec("a", "extractive", template="flan-briefly").to_toml() + "\n"
                    + ModelSpec("b", "extractive").to_toml())
    code, out, _ = run(capsys, "models", "--json", "--registry", path)
    assert code == 0 and {m["name"]: m["template"] for m in json.loads(out)} == {"a": "flan-briefly", "b": "experiment"}


# ---------------------------------------------------------------- generation


def test_two_templates_times_two_models_give_four_results_each_named(registry_file, tiny_models):
    from summarizer.generation import DecodingSettings, summarize
    from summarizer.registry import Registry

    registry = Registry.from_file(registry_file)
    (example,) = _examples(1)
    decoding = DecodingSettings(max_new_tokens=6)
    streamed = set()
    results = summarize(registry, ["original", "peft-lora"], [example], decoding=decoding,
                        templates=["experiment", LAB],
                        on_template_partial=lambda m, t, i, text: streamed.add((m, t, i)))
    assert [(r.model, r.template) for r in results] == [
        ("original", "experiment"), ("original", "lab-going-on"),
        ("peft-lora", "experiment"), ("peft-lora", "lab-going-on")]
    for result in results:
        assert result.error is None and result.summary is not None
        assert result.prompt.text == resolve_template(result.template).render(example.dialogue)
        assert result.to_dict()["template"] == result.template
    assert streamed == {(r.model, r.template, example.id) for r in results}
    # Batched together, each (model, template) pair gives what it gives alone.
    alone = summarize(registry, ["peft-lora"], [example], decoding=decoding, templates=[LAB])[0]
    assert alone.summary == results[3].summary and alone.prompt.text == results[3].prompt.text


def test_without_templates_each_model_reads_its_registry_default(tmp_path, tiny_models):
    from summarizer.generation import summarize
    from summarizer.registry import ModelSpec, Registry

    registry = Registry([ModelSpec("plain", "extractive"),
                         ModelSpec("lab", "extractive", template="lab-going-on")])
    examples = _examples(2)
    results = summarize(registry, ["plain", "lab"], examples)
    assert [(r.model, r.template) for r in results] == [("plain", "experiment")] * 2 + [("lab", "lab-going-on")] * 2
    assert results[2].prompt.text == BUILTIN["lab-going-on"].render(examples[0].dialogue)
    with pytest.raises(UserError, match="exactly once"):
        summarize(registry, ["plain"], examples, templates=["no placeholder in this rather long text here"])


# ---------------------------------------------------------------- command line


def test_evaluate_scores_every_model_under_each_prompt(capsys, registry_file, release_folder, tmp_path):
    output = tmp_path / "results.json"
    code, out, _ = run(capsys, "evaluate", "--models", "original,longest-3", "--registry", registry_file,
                       "--data", release_folder, "--limit", 3, "--max-new-tokens", 4,
                       "--prompt", "experiment", "--prompt", LAB, "--output", output)
    assert code == 0
    report = json.loads(output.read_text())
    pairs = {(r["model"], r["template"]) for r in report["aggregate"]}
    assert pairs == {(m, t) for m in ("original", "longest-3") for t in ("experiment", "lab-going-on")}
    assert all(r["n"] == 3 for r in report["aggregate"])
    assert report["settings"]["templates"] == {"experiment": EXPERIMENT.text, "lab-going-on": LAB}
    for row in report["rows"]:
        before, after = resolve_template(row["template"]).text.split("{dialogue}")
        assert row["prompt"].startswith(before) and row["prompt"].endswith(after)
    header = out.splitlines()[0].split()
    assert header[:3] == ["model", "template", "shots"]
    assert {(g["model"], g["template"]) for g in report["improvements_over_original"]} == \
        {("longest-3", "experiment"), ("longest-3", "lab-going-on")}
    code, _, _ = run(capsys, "evaluate", "--models", "longest-3", "--registry", registry_file,
                     "--data", release_folder, "--limit", 2, "--prompt", "@" + str(_file(tmp_path, LAB + "\n")),
                     "--output", tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert code == 0 and lines[0].startswith("model,template,shots,id") and lines[1].startswith("longest-3,lab-going-on,")


def _file(folder: Path, text: str) -> Path:
    path = folder / "template.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_custom_template_reaches_the_model_as_text(capsys, registry_file):
    dialogue = synthetic_pairs(1)[0]["dialogue"]
    text = "{__class__} {0}\n{dialogue}\nWhat now?"
    code, out, err = run(capsys, "summarize", "--model", "original", "--registry", registry_file,
                         "--max-new-tokens", 3, "--prompt", text, "--show-prompt", dialogue)
    assert code == 0 and err.strip().endswith("{__class__} {0}\n" + dialogue + "\nWhat now?") and out.strip()
    code, out, _ = run(capsys, "summarize", "--model", "longest-3", "--registry", registry_file,
                       "--prompt", "experiment", "--prompt", text, dialogue)
    name = resolve_template(text).name
    assert code == 0 and out.splitlines()[0].startswith("[experiment] ") and f"[{name}] " in out


@pytest.mark.parametrize("prompt, message", [
    ("{dialogue}{dialogue}", "exactly once"),
    ("", "cannot be empty"),
    ("@no-such-file.txt", "cannot read no-such-file.txt"),
])
def test_bad_prompt_on_the_command_line_is_one_line_and_exit_2(tmp_path, prompt, message):
    process = subprocess.run([sys.executable, "-m", "summarizer", "evaluate", "--models", "longest-3",
                              "--prompt", prompt], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                  "SUMMARIZER_REGISTRY": str(ROOT / "models.toml")})
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1


def test_results_without_a_template_read_as_the_experiments(release_folder):
    from summarizer.data import load_split
    from summarizer.evaluation import EvaluationReport, rescore

    examples = load_split(str(release_folder), "test")
    old = EvaluationReport(rows=[{"model": "m", "shots": 0, "id": e.id, "summary": e.references[0],
                                  "seconds": 0.0, "batch_size": 1, "error": None} for e in examples])
    scored = rescore(old, examples)
    assert scored.aggregate[0]["template"] == "experiment" and scored.score("m", 0, "experiment")["n"] == 4


# ---------------------------------------------------------------- training


@pytest.mark.slow
def test_training_on_another_template_records_it_everywhere(tiny_models, release_folder, tmp_path, capsys):
    from transformers import AutoTokenizer

    from summarizer.data import load_split
    from summarizer.registry import load_specs
    from training.cli import main as training_main
    from training.data import tokenize
    from training.evaluation import folder_spec

    registry, output = tmp_path / "models.toml", tmp_path / "outputs" / "lab-tuned"
    code = training_main(["full", "--base", str(tiny_models["base"]), "--data", str(release_folder),
                          "--output", str(output), "--max-steps", "2", "--limit-eval", "2",
                          "--eval-max-new-tokens", "3", "--quiet", "--prompt", LAB,
                          "--register", str(registry)])
    assert code == 0 and 'template = "lab-going-on"' in capsys.readouterr().out
    assert load_specs(registry)[0].default_template.name == "lab-going-on"
    recorded = json.loads((output / "training_config.json").read_text())
    assert recorded["template"] == {"name": "lab-going-on", "text": LAB}
    assert "`lab-going-on`" in (output / "README.md").read_text()
    assert folder_spec(output).default_template.name == "lab-going-on"
    # Training preprocessing renders with the inference function.
    tokenizer = AutoTokenizer.from_pretrained(output)
    examples = load_split(str(release_folder), "train", limit=2)
    features = tokenize(examples, tokenizer, 512, 64, BUILTIN["lab-going-on"])
    assert features[0]["input_ids"] == tokenizer(build_prompt(
        examples[0].dialogue, [], WordCounter(), 10_000, BUILTIN["lab-going-on"]).text)["input_ids"]

    code = training_main(["full", "--base", str(tiny_models["base"]), "--data", str(release_folder),
                          "--output", str(tmp_path / "bad"), "--prompt", "{dialogue} {dialogue}"])
    assert code == 2 and "exactly once" in capsys.readouterr().err and not (tmp_path / "bad").exists()
