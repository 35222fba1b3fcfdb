"""The training package on a tiny T5 that learns synthetic dialogues in a few dozen CPU steps.

The session fixture `world` (conftest.py) gives the tiny base a skill first, as FLAN's instruction
tuning gives FLAN-T5 one; the untrained base therefore scores ~0 ROUGE on the plain prompt, and
each method must learn to get the summary from the plain prompt.
"""

from __future__ import annotations

import json
from dataclasses import replace
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BUYERS, GOODS, write_jsonl

pytestmark = pytest.mark.slow

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
METHODS = ("full", "lora", "prompt-tuning")
# Per-method overrides for a tiny model (larger rates than FLAN-T5's defaults): they also test that
# every default can be overridden from the command line.
OVERRIDES = {
    "full": ["--learning-rate", "3e-3"],
    "lora": ["--learning-rate", "1e-2", "--lora-r", "4", "--lora-alpha", "8",
             "--target-modules", "q", "v", "--lora-dropout", "0.0"],
    "prompt-tuning": ["--learning-rate", "3e-1", "--num-virtual-tokens", "4"],
}


def _args(world, method: str, output: Path, *extra: str) -> list[str]:
    return [method, "--base", str(world["base"]), "--data", str(world["data"]),
            "--output", str(output), "--save-steps", "1000", "--logging-steps", "5",
            "--limit-eval", "16", "--eval-max-new-tokens", "16", "--quiet",
            *OVERRIDES[method], *extra]


def _train(world, method: str, output: Path, *extra: str, callbacks=()):
    """A run through the CLI's own parser (so flags and overrides are what is tested)."""
    from training.cli import build_parser
    from training.config import RunSettings, from_namespace
    from training.methods import METHODS as modules
    from training.run import train

    args = build_parser().parse_args(_args(world, method, output, *extra))
    return train(method, from_namespace(RunSettings, args),
                 from_namespace(modules[method].Config, args), progress=False, callbacks=callbacks)


def _validation(world, limit: int = 16):
    from summarizer.data import load_split
    return load_split(str(world["data"]), "validation", limit=limit)


@pytest.fixture(scope="session")
def untrained_rouge(world) -> dict:
    from summarizer.registry import ModelSpec
    from training.evaluation import evaluate_spec

    spec = ModelSpec("base", "seq2seq", str(world["base"]))
    return evaluate_spec(spec, _validation(world), max_new_tokens=16, progress=False)


@pytest.fixture(scope="session")
def trained(world) -> dict:
    """Each method trained once (60 steps); the tests below share the results."""
    return {m: _train(world, m, world["root"] / f"out-{m}", "--max-steps", "60") for m in METHODS}


def _batch(world, tokenizer):
    from summarizer.prompts import format_prompt

    examples = _validation(world, 3)
    inputs = tokenizer([format_prompt(e.dialogue) for e in examples], return_tensors="pt", padding=True)
    labels = tokenizer(text_target=[e.summary for e in examples], return_tensors="pt",
                       padding=True)["input_ids"]
    return inputs, labels


# ------------------------------------------------------------------------------------------------
# Learning, output folders, round trips


@pytest.mark.parametrize("method", METHODS)
def test_each_method_lowers_loss_and_raises_rouge(trained, untrained_rouge, method):
    result = trained[method]
    print(method, result.losses, result.rouge, untrained_rouge)
    assert result.global_step == 60
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert untrained_rouge["rouge1"] < 0.1  # the decoy sentence, not the summary
    assert result.rouge["n"] == 16
    assert result.rouge["rouge1"] > untrained_rouge["rouge1"] + 0.5, result.rouge
    assert result.rouge["rouge2"] > untrained_rouge["rouge2"] + 0.4, result.rouge


@pytest.mark.parametrize("method,files", [
    ("full", {"model.safetensors", "config.json", "generation_config.json"}),
    ("lora", {"adapter_config.json", "adapter_model.safetensors"}),
    ("prompt-tuning", {"adapter_config.json", "adapter_model.safetensors"}),
])
def test_output_folder_layout_and_card(trained, world, method, files):
    output = trained[method].output
    names = {p.name for p in output.iterdir()}
    assert files | {"tokenizer_config.json", "README.md", "training_config.json", "training_loss.png"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)  # safetensors only
    card = (output / "README.md").read_text()
    for text in (f"**Base model:** `{world['base'].name}` (a local folder)",
                 f"**Data:** `{Path(world['data']).name}` (a local", "trainable", "ROUGE-1",
                 "learning_rate", "![training loss](training_loss.png)",
                 f"kind = \"{trained[method].spec.kind}\""):
        assert text in card
    # the card travels (zip, hub): the machine's paths only in the registry entry, which needs
    # them; the hub's base_model field takes hub ids, not folders
    front_matter, body = card.split("\n---\n", 1)
    assert "base_model" not in front_matter and str(world["data"]) not in card
    assert card.count(str(world["base"])) == body.split("```toml")[1].count(str(world["base"]))
    leftovers = [p.name for p in output.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []
    assert "the first 16 rows of the validation split" in card
    if method == "full":  # FLAN-T5's lm_head is untied, and the saved config says so
        assert json.loads((output / "config.json").read_text())["tie_word_embeddings"] is False
    else:
        adapter = json.loads((output / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == str(world["base"])


def _same_logits(a, b) -> None:
    import torch
    assert a.shape == b.shape
    assert torch.equal(a, b), (a - b).abs().max()


def test_full_round_trip_identical_logits(trained, world):
    import torch
    from transformers import AutoModelForSeq2SeqLM

    result = trained["full"]
    inputs, labels = _batch(world, result.tokenizer)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(result.output, use_safetensors=True).eval()
    with torch.no_grad():
        _same_logits(result.model(**inputs, labels=labels).logits, loaded(**inputs, labels=labels).logits)


def test_lora_round_trip_identical_logits(trained, world):
    """Reloaded the way the app loads it: the registry's LoRA path."""
    import torch

    from summarizer.registry import ModelSpec, Registry

    result = trained["lora"]
    inputs, labels = _batch(world, result.tokenizer)
    registry = Registry([ModelSpec("mine", "lora", str(result.output), base=str(world["base"]))])
    loaded = registry.get("mine")
    module = loaded.backbone.module()
    module.set_adapter("mine")
    with torch.no_grad():
        _same_logits(result.model(**inputs, labels=labels).logits, module(**inputs, labels=labels).logits)


def test_prompt_tuning_round_trip_identical_logits(trained, world):
    """PEFT's reload and the registry's soft prompt both give the trained model's logits."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    from summarizer.registry import ModelSpec, Registry

    result = trained["prompt-tuning"]
    inputs, labels = _batch(world, result.tokenizer)
    base = AutoModelForSeq2SeqLM.from_pretrained(world["base"], use_safetensors=True)
    reloaded = PeftModel.from_pretrained(base, result.output).eval()
    with torch.no_grad():
        expected = result.model(**inputs, labels=labels).logits
        _same_logits(expected, reloaded(**inputs, labels=labels).logits)

        loaded = Registry([ModelSpec("soft", "prompt-tuning", str(result.output),
                                     base=str(world["base"]))]).get("soft")
        trained_prompt = result.model.prompt_encoder["default"].embedding.weight
        assert torch.equal(loaded.soft_prompt, trained_prompt)
        model = loaded.backbone.model
        embeds = model.get_input_embeddings()(inputs["input_ids"])
        prompt = loaded.soft_prompt.unsqueeze(0).expand(embeds.shape[0], -1, -1)
        mask = torch.cat([torch.ones(embeds.shape[0], prompt.shape[1], dtype=torch.long),
                          inputs["attention_mask"]], dim=1)
        logits = model(inputs_embeds=torch.cat([prompt, embeds], 1), attention_mask=mask,
                       labels=labels).logits
        _same_logits(expected, logits)


def test_evaluate_command_scores_an_output_folder(trained, world, capsys):
    from training.cli import main

    output = trained["lora"].output
    code = main(["evaluate", "--model-dir", str(output), "--data", str(world["data"]),
                 "--split", "validation", "--limit", "16", "--max-new-tokens", "16", "--json", "--quiet"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 16
    assert report["rouge1"] == pytest.approx(trained["lora"].rouge["rouge1"])


# ------------------------------------------------------------------------------------------------
# The command line: registry entry, help, parameter counts


def test_cli_prints_and_registers_the_registry_entry(world, tmp_path, capsys):
    from summarizer.registry import load_specs
    from training.cli import main

    registry = tmp_path / "models.toml"
    registry.write_text('[models.original]\nkind = "seq2seq"\npath = "google/flan-t5-base"\n')
    output = tmp_path / "outputs" / "instruct"
    code = main(_args(world, "full", output, "--max-steps", "3", "--limit-eval", "0",
                      "--register", str(registry)))
    assert code == 0
    out = capsys.readouterr().out
    assert '[models.instruct]\nkind = "seq2seq"\npath = "./outputs/instruct"' in out
    specs = {s.name: s for s in load_specs(registry)}
    assert specs["instruct"].kind == "seq2seq" and Path(specs["instruct"].path) == output
    assert specs["original"].path == "google/flan-t5-base"  # the existing entry is untouched

    # The same name again is refused before any training, and the file is unchanged.
    before = registry.read_text()
    code = main(_args(world, "full", tmp_path / "other" / "instruct", "--max-steps", "3",
                      "--register", str(registry)))
    assert code == 2 and "already lists a model named 'instruct'" in capsys.readouterr().err
    assert registry.read_text() == before
    assert not (tmp_path / "other" / "instruct").exists()


def test_help_of_every_command():
    from training.cli import build_parser

    parser = build_parser()
    for argv in (["--help"], ["full", "--help"], ["lora", "--help"], ["prompt-tuning", "--help"],
                 ["evaluate", "--help"], ["params", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 0
    completed = subprocess.run([sys.executable, "-m", "training", "lora", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    for flag in ("--lora-r", "(default: 32)", "--lora-alpha", "--target-modules", "--lora-dropout",
                 "--learning-rate", "(default: 0.001)", "--resume", "--save-steps", "--register"):
        assert flag in completed.stdout


def test_documented_defaults():
    from training.config import RunSettings
    from training.methods import full, lora, prompt_tuning

    config = full.Config()
    assert (config.learning_rate, config.weight_decay, config.num_train_epochs) == (1e-5, 0.01, 5)
    config = lora.Config()
    assert (config.lora_r, config.lora_alpha, config.target_modules, config.lora_dropout,
            config.bias, config.learning_rate) == (32, 32, ["q", "v"], 0.05, "none", 1e-3)
    peft_config = lora.peft_config(config)
    assert peft_config.task_type == "SEQ_2_SEQ_LM" and set(peft_config.target_modules) == {"q", "v"}
    assert prompt_tuning.Config().init_text == "Summarize the following conversation."
    assert prompt_tuning.peft_config(prompt_tuning.Config(), "some/base").prompt_tuning_init == "TEXT"
    assert RunSettings().base == "google/flan-t5-base"


@pytest.mark.parametrize("argv,trainable,total,percent", [
    (["--arch", "flan-t5-base"], 247_577_856, 247_577_856, 100.0),
    (["--arch", "flan-t5-base", "--method", "lora"], 3_538_944, 251_116_800, 1.409),
    (["--arch", "flan-t5-small"], 76_961_152, 76_961_152, 100.0),
    (["--arch", "flan-t5-small", "--method", "lora", "--lora-r", "8"], 344_064, 77_305_216, 0.445),
    (["--arch", "flan-t5-small", "--method", "prompt-tuning"], 20 * 512, 76_961_152 + 20 * 512, 0.013),
])
def test_params_json(capsys, argv, trainable, total, percent):
    from training.cli import main

    assert main(["params", *argv, "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["trainable"], counts["all"], counts["percent"]) == (trainable, total, percent)


# ------------------------------------------------------------------------------------------------
# Checkpoints: resume, partial checkpoints, atomic output


class _StopAfterFirstSave:
    """A crash right after the first checkpoint is written (as a killed job would stop)."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Stop(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                raise RuntimeError("simulated crash")

        return Stop()


@pytest.mark.parametrize("method", METHODS)
def test_resume_continues_to_the_same_step_as_an_uninterrupted_run(world, tmp_path, method):
    import torch

    steps = ["--max-steps", "12", "--save-steps", "4", "--limit-eval", "0"]
    uninterrupted = _train(world, method, tmp_path / "straight", *steps)
    assert uninterrupted.global_step == 12

    output = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(world, method, output, *steps, callbacks=[_StopAfterFirstSave()])
    assert not output.exists()  # no half-finished output folder
    assert (output.parent / "crashed.checkpoints" / "checkpoint-4").is_dir()

    resumed = _train(world, method, output, *steps, "--resume")
    assert resumed.resumed_from.name == "checkpoint-4"
    assert resumed.global_step == uninterrupted.global_step == 12
    weights = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    assert (output / weights).is_file()
    # Optimizer, scheduler and data order were restored too: the weights end up where the
    # uninterrupted run's did.
    for (name, a), (_, b) in zip(uninterrupted.model.named_parameters(), resumed.model.named_parameters()):
        if a.requires_grad:
            assert torch.allclose(a, b, atol=1e-5), name


def test_resume_ignores_partial_checkpoints(world, tmp_path, capsys):
    import shutil

    from training.checkpoints import checkpoint_dir, is_complete, latest_complete_checkpoint

    output = tmp_path / "run"
    _train(world, "lora", output, "--max-steps", "8", "--save-steps", "4", "--limit-eval", "0")
    folder = checkpoint_dir(output)
    assert is_complete(folder / "checkpoint-8")
    # Three ways a checkpoint can be unfinished: no trainer state, no completion marker (the
    # Trainer was still writing), a truncated weights file.
    (folder / "checkpoint-8" / "trainer_state.json").unlink()
    for step in (12, 16):
        shutil.copytree(folder / "checkpoint-4", folder / f"checkpoint-{step}")
        state = json.loads((folder / "checkpoint-4" / "trainer_state.json").read_text())
        state["global_step"] = step
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps(state))
        (folder / f"checkpoint-{step}" / "checkpoint-complete.json").write_text(
            json.dumps({"global_step": step}))
    (folder / "checkpoint-12" / "checkpoint-complete.json").unlink()
    weights = folder / "checkpoint-16" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert [is_complete(folder / f"checkpoint-{s}") for s in (4, 8, 12, 16)] == [True, False, False, False]
    assert latest_complete_checkpoint(output) == folder / "checkpoint-4"

    resumed = _train(world, "lora", output, "--max-steps", "8", "--save-steps", "4",
                     "--limit-eval", "0", "--resume")
    assert resumed.resumed_from.name == "checkpoint-4" and resumed.global_step == 8
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-4", "checkpoint-8"]
    assert is_complete(folder / "checkpoint-8")
    # Another method cannot continue these checkpoints.
    _fails(capsys, _args(world, "full", output, "--max-steps", "8", "--resume"), "lora checkpoint")


def test_atomic_output_keeps_the_old_folder_on_failure(tmp_path):
    from training.checkpoints import atomic_folder

    output = tmp_path / "model"
    output.mkdir()
    (output / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(output) as folder:
            (folder / "weights").write_text("half")
            raise RuntimeError("disk full")
    assert (output / "weights").read_text() == "old"
    with atomic_folder(output) as folder:
        (folder / "weights").write_text("new")
    assert (output / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_labels_are_padded_with_minus_100_and_use_the_prompt_template(world):
    from transformers import AutoTokenizer

    from summarizer.prompts import format_prompt
    from training.data import collator, tokenize

    tokenizer = AutoTokenizer.from_pretrained(world["base"])
    examples = _validation(world, 8)
    features = tokenize(examples, tokenizer, 512, 128)
    expected = tokenizer(format_prompt(examples[0].dialogue))["input_ids"]
    assert features[0]["input_ids"] == expected
    batch = collator(tokenizer)(features)
    lengths = [len(f["labels"]) for f in features]
    assert min(lengths) < max(lengths)
    for row, length in zip(batch["labels"].tolist(), lengths):
        assert row[length:] == [-100] * (len(row) - length)
        assert -100 not in row[:length]


# ------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit code 2, before any long work


def _fails(capsys, argv, *expected) -> str:
    from training.cli import main

    capsys.readouterr()  # only what this call prints
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def test_unknown_method_is_one_line(capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["qlora", "--output", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "qlora" in err


def test_data_without_summaries(world, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", [{"id": "a", "dialogue": "#Person1#: Hi.\n#Person2#: Hello."}])
    argv = _args(world, "lora", tmp_path / "out")
    argv[argv.index("--data") + 1] = str(data)
    _fails(capsys, argv, "no summary")


def test_non_empty_output_needs_overwrite_or_resume(world, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "something").write_text("x")
    # Checked first: a missing base is not even looked at.
    argv = _args(world, "full", output)
    argv[argv.index("--base") + 1] = str(tmp_path / "missing")
    _fails(capsys, argv, "not empty", "--overwrite", "--resume")
    assert (output / "something").read_text() == "x"


def test_missing_or_unreachable_base(world, tmp_path, capsys):
    for base, expected in ((str(tmp_path / "no-such-model"), "not found"),
                           ("nobody-here/no-such-model", "cannot load base model")):
        argv = _args(world, "lora", tmp_path / "out")
        argv[argv.index("--base") + 1] = base
        _fails(capsys, argv, expected)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((world["base"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    argv = _args(world, "full", tmp_path / "out")
    argv[argv.index("--base") + 1] = str(pickled)
    _fails(capsys, argv, "safetensors")
    assert not (tmp_path / "out").exists()


def test_an_adapter_moved_to_another_machine_asks_for_its_base(trained, world, tmp_path, capsys):
    """adapter_config.json keeps the base's absolute path of the training machine: elsewhere
    `evaluate` says so in one line, and --base makes it work."""
    import shutil
    from training.cli import main

    moved = tmp_path / "moved"
    shutil.copytree(trained["lora"].output, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "training-machine" / "base")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    argv = ["evaluate", "--model-dir", str(moved), "--data", str(world["data"]), "--split", "validation",
            "--limit", "2", "--max-new-tokens", "4", "--json", "--quiet"]
    _fails(capsys, argv, "training-machine/base (where it was trained")
    assert main(argv + ["--base", str(world["base"])]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2


def test_bad_numbers_and_flags(world, tmp_path, capsys):
    _fails(capsys, _args(world, "full", tmp_path / "out", "--max-steps", "0"), "--max-steps")
    _fails(capsys, _args(world, "full", tmp_path / "out", "--overwrite", "--resume"), "choose one")
    _fails(capsys, ["params", "--arch", "flan-t5-huge"], "unknown architecture")
    _fails(capsys, ["params", "--arch", "flan-t5-small", "--method", "qlora"], "unknown method")
    _fails(capsys, ["evaluate", "--model-dir", str(tmp_path / "nothing")], "not found")


def test_one_file_holds_out_its_last_rows_and_limit_train_subsamples(world):
    from training.data import load_training_data

    source = str(world["data"] / "train.jsonl")
    train, held_out = load_training_data(source, None, "validation", 10)
    assert len(held_out) == 10 and not {e.dialogue for e in train} & {e.dialogue for e in held_out}
    train, held_out = load_training_data(source, 5, "validation", 10)
    assert len(train) == 5 and len(held_out) == 10
    train, held_out = load_training_data(str(world["data"]), 125, "validation", 0)
    assert len(train) == 125 and held_out == []


def test_each_output_is_ready_in_the_summarizer_and_summarizes_through_its_cli(trained, world, tmp_path, capsys):
    from summarizer.cli import main as summarizer
    from training.run import register, registry_toml

    registry = tmp_path / "models.toml"
    registry.write_text('[models.longest-3]\nkind = "extractive"\n')
    for method, result in trained.items():
        register(registry, registry_toml(replace(result.spec, name=method), registry))
    assert summarizer(["models", "--json", "--registry", str(registry)]) == 0
    states = {m["name"]: m["state"] for m in json.loads(capsys.readouterr().out)}
    assert states == {"longest-3": "ready", "full": "ready", "lora": "ready", "prompt-tuning": "ready"}
    dialogue = _validation(world, 1)[0]
    for method, result in trained.items():
        assert summarizer(["summarize", "--model", method, "--registry", str(registry),
                           "--max-new-tokens", "16", dialogue.dialogue]) == 0
        summary = capsys.readouterr().out.strip()
        # The learned sentence "NAME buys N ITEM." (a model this briefly trained may pick the
        # wrong name; the untrained base writes the decoy sentence instead).
        assert re.fullmatch(rf"({'|'.join(BUYERS)}) buys [2-9] ({'|'.join(GOODS)})\.", summary), summary


def test_registry_entries_keep_working_when_the_project_moves(tmp_path):
    """A trained model's entry names a base and a folder in the same project relative to the
    registry file, so moving the whole project keeps it loadable; a path that shares nothing
    with the registry's folder but the filesystem's root stays absolute."""
    import shutil

    from summarizer.registry import ModelSpec, load_specs
    from training.run import registry_toml

    project = tmp_path / "project"
    base, adapter = project / "assets" / "base", project / "outputs" / "jobs" / "a1" / "model"
    for folder in (base, adapter):
        folder.mkdir(parents=True)
    registry = project / "outputs" / "jobs" / "models.runtime.toml"
    registry.write_text(registry_toml(ModelSpec("mine", "lora", str(adapter), str(base)), registry))
    text = registry.read_text()
    assert 'path = "./a1/model"' in text and 'base = "../../assets/base"' in text
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    (spec,) = load_specs(moved / "outputs" / "jobs" / "models.runtime.toml")
    assert Path(spec.path).resolve() == (moved / "outputs" / "jobs" / "a1" / "model").resolve()
    assert Path(spec.base).resolve() == (moved / "assets" / "base").resolve()
    elsewhere = Path(tmp_path.anchor) / "another-disk" / "base"  # shares only the root
    entry = registry_toml(ModelSpec("other", "lora", str(adapter), str(elsewhere)), registry)
    assert f'base = "{elsewhere.as_posix()}"' in entry.replace("\\\\", "/")
