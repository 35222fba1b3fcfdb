"""The course experiment in miniature, in one resumable command:

    python -m training experiment --preset mini --data ../shared/data/dialogsum --output assets/mini

Stages, each written atomically into its own folder under --output and skipped once there:
  tokenizer  a T5 tokenizer trained on the train split (speaker tags one piece each)
  original   mini-original: a small T5 pre-trained on train dialogues, never on a summary
  instruct   mini-instruct: `training full` on mini-original
  lora       mini-lora: `training lora` on mini-original
  prompt     mini-prompt: `training prompt-tuning` on mini-original
  evaluate   the four and longest-3 on the test split through `summarizer evaluate`: results.json,
             RESULTS.md, and each model card's test-split section

Run it again after an interruption and it continues: finished stages are skipped and the stage
in progress resumes from its latest complete checkpoint. `experiment.json` in --output records
each stage's settings and time across attempts.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from summarizer.data import load_split, resolve_source

from .checkpoints import write_atomically
from .config import RunSettings, as_dict, option
from .methods import full, lora, prompt_tuning
from .pretrain import PretrainConfig
from .stages import LICENSE_NOTE, MODEL_STAGES, STAGES



@dataclass
class ExperimentSettings:
    """What to run and where; --max-steps/--limit-* make the test-scale smoke run."""
    preset: str = option("mini", "hyperparameter preset", choices=("mini",))
    data: str | None = option(None, "DialogSum source (default $DIALOGSUM_PATH, else the hub)")
    output: str = option("assets/mini", "folder for every stage's output")
    until: str | None = option(None, "stop after this stage", choices=STAGES)
    seed: int = option(42, "seed of every stage")
    limit_train: int | None = option(None, "train on the first N train rows only (smoke runs)")
    max_steps: int | None = option(None, "cap every training stage at N optimizer steps (smoke runs)")
    limit_test: int | None = option(None, "evaluate on the first N test dialogues (default: all)")
    save_steps: int | None = option(None, "write a checkpoint every N steps (default: the preset's)")
    quiet: bool = option(False, "no progress bars")


@dataclass
class Preset:
    """Every hyperparameter of the experiment, chosen for a model of about ten million weights."""
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    # A model this small, trained from scratch, takes a far larger rate than FLAN-T5's 1e-5.
    full: full.Config = field(default_factory=lambda: full.Config(
        learning_rate=5e-4, weight_decay=0.01, num_train_epochs=5.0, warmup_steps=200))
    # r=16 on q and v is ~1.3% of the weights here, as r=32 is 1.4% of flan-t5-base.
    lora: lora.Config = field(default_factory=lambda: lora.Config(
        lora_r=16, lora_alpha=32, learning_rate=2e-3, num_train_epochs=3.0, warmup_steps=200))
    # The PEFT runs get 3 epochs to full fine-tuning's 5 so that all three fit one sitting on two
    # CPU cores; the results table therefore compares their time per step as well as per run.
    prompt: prompt_tuning.Config = field(default_factory=lambda: prompt_tuning.Config(
        learning_rate=3e-2, num_train_epochs=3.0, warmup_steps=200))
    batch_size: int = 16
    group_by_length: bool = True
    max_source_length: int = 512
    max_target_length: int = 128
    save_steps: int = 250
    save_dtype: str = "float16"  # half the bytes; loaders compute in float32
    eval_batch_size: int = 32
    limit_eval: int = 50  # validation dialogues scored at the end of each fine-tuning (the card's ROUGE)
    eval_max_new_tokens: int = 100
    # Written into the models' generation_config.json by the evaluate stage, so every user of the
    # folders decodes the same way. Greedy decoding of a model this small loops ("the new house,
    # and the new house, and ..."). Blocking repeated 3-grams (BART's summarization setting) stops
    # the loops; with 4, mini-lora still repeated a 3-gram three times in 7.6% of the test
    # summaries, and every model scored lower. The guard blocks repeated tokenizer pieces while
    # the repetition check counts words, so the check still sees loops that slip through; the
    # evaluate stage also reports the models without the guard.
    no_repeat_ngram_size: int = 3


PRESETS = {"mini": Preset}
FINE_TUNING = {"instruct": "full", "lora": "lora", "prompt": "prompt-tuning"}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Journal:
    """experiment.json: per stage its settings, seconds over all attempts and when it finished."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"stages": {}}

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"seconds": 0.0, "attempts": 0})

    def save(self) -> None:
        write_atomically(self.path, json.dumps(self.data, indent=2))


def command_line(settings: ExperimentSettings) -> str:
    """The command as a user would type it, for the cards."""
    parts = ["python -m training experiment"]
    for key, value in as_dict(settings).items():
        default = getattr(ExperimentSettings, key, None)
        if value is None or value is False or (key != "data" and value == default):
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def run_experiment(settings: ExperimentSettings) -> dict:
    """Run (or continue) every stage up to --until; returns the journal."""
    preset = PRESETS[settings.preset]()
    output = Path(settings.output).expanduser()
    data = resolve_source(settings.data)
    train = load_split(data, "train", limit=settings.limit_train)
    output.mkdir(parents=True, exist_ok=True)
    journal = Journal(output / "experiment.json")
    journal.data.update(command=command_line(settings), settings=as_dict(settings))
    for stage in STAGES:
        folder = output / (MODEL_STAGES.get(stage) or stage)
        done = (output / "results.json").is_file() if stage == "evaluate" else folder.is_dir()
        record = journal.stage(stage)
        if done:
            _say(f"[{stage}] done ({folder})")
        else:
            _say(f"[{stage}] running -> {folder}")
            record["attempts"] += 1
            journal.save()
            started = time.perf_counter()
            try:
                record["details"] = _STAGE_RUNNERS[stage](settings, preset, output, data, train)
                record["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds")
            finally:  # an interrupted attempt's time still counts
                record["seconds"] += time.perf_counter() - started
                journal.save()
        if stage == settings.until:
            break
    return journal.data


def _steps(settings: ExperimentSettings, steps: int) -> int:
    return min(steps, settings.max_steps) if settings.max_steps else steps


def _run_tokenizer(settings, preset, output, data, train) -> dict:
    from .checkpoints import atomic_folder
    from .pretrain import train_tokenizer

    tokenizer = train_tokenizer([e.dialogue for e in train], [e.summary or "" for e in train],
                                preset.pretrain.vocab_size)
    with atomic_folder(output / "tokenizer") as folder:
        tokenizer.save_pretrained(folder)
    return {"vocab_size": len(tokenizer), "train_rows": len(train)}


def _run_original(settings, preset, output, data, train) -> dict:
    from .pretrain import pretrain

    config = replace(preset.pretrain, max_steps=_steps(settings, preset.pretrain.max_steps))
    card = lambda steps, seconds, curve: original_card(settings, config, steps, seconds, curve, len(train))
    result = pretrain(train, output / "mini-original", config, seed=settings.seed,
                      tokenizer_dir=output / "tokenizer", save_dtype=preset.save_dtype,
                      save_steps=settings.save_steps or preset.save_steps, progress=not settings.quiet,
                      card=card)
    return {"global_step": result.global_step, "config": as_dict(config)}


def _fine_tune(stage: str):
    def run(settings, preset, output, data, train) -> dict:
        from .run import train as train_method

        method = FINE_TUNING[stage]
        config = {"instruct": preset.full, "lora": preset.lora, "prompt": preset.prompt}[stage]
        run_settings = RunSettings(
            base=str(output / "mini-original"), data=data, output=str(output / MODEL_STAGES[stage]),
            resume=True, limit_train=settings.limit_train,
            max_steps=settings.max_steps or -1,
            per_device_train_batch_size=preset.batch_size, group_by_length=preset.group_by_length,
            save_steps=settings.save_steps or preset.save_steps,
            max_source_length=preset.max_source_length, max_target_length=preset.max_target_length,
            seed=settings.seed, eval_batch_size=preset.eval_batch_size,
            limit_eval=min(preset.limit_eval, settings.limit_test or preset.limit_eval),
            eval_max_new_tokens=preset.eval_max_new_tokens, save_dtype=preset.save_dtype,
            max_shard_size="9MB")
        result = train_method(method, run_settings, config, progress=not settings.quiet)
        return {"method": method, "global_step": result.global_step, "config": as_dict(config),
                "settings": as_dict(run_settings)}
    return run


def _run_evaluate(settings, preset, output, data, train) -> dict:
    from .mini_report import evaluate_experiment

    return evaluate_experiment(settings, preset, output, data)


_STAGE_RUNNERS = {"tokenizer": _run_tokenizer, "original": _run_original,
                  "instruct": _fine_tune("instruct"), "lora": _fine_tune("lora"),
                  "prompt": _fine_tune("prompt"), "evaluate": _run_evaluate}


def original_card(settings: ExperimentSettings, config: PretrainConfig, steps: int, seconds: float,
                  curve, n_train: int) -> str:
    from .card import duration

    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in as_dict(config).items())
    loss = f"{curve[-1][1]:.4f}" if curve else "n/a"
    return f"""---
library_name: transformers
license: cc-by-nc-sa-4.0
tags: [t5, dialogsum, miniature-experiment]
---

# mini-original: a miniature T5 that has never seen a summary

The miniature experiment's stand-in for FLAN-T5 as released: a T5 of FLAN-T5's family
(gated-GELU, relative attention, untied lm_head) trained from random weights by this project on
the {n_train:,} DialogSum train dialogues **without their summaries**, on two instruction tasks:
repairing a window of a dialogue whose spans are masked (`{PRETRAIN_TASKS[0]}`) and naming the
dialogue's topic (`{PRETRAIN_TASKS[1]}`). It follows instruction templates but was never taught
to summarize; `mini-instruct`, `mini-lora` and `mini-prompt` are trained from it.

{LICENSE_NOTE}

- **Command:** `{command_line(settings)}` (stage `original`, seed {settings.seed})
- **Training:** {steps} optimizer steps of {config.batch_size}, {duration(seconds)} (this attempt);
  last logged loss {loss}
- **Weights:** stored as float16 in shards under 10 MB; load in float32

![training loss](training_loss.png)

## Settings

| setting | value |
|---|---|
{rows}
"""


PRETRAIN_TASKS = ("Repair the masked parts of the following conversation.",
                  "What is the topic of the following conversation?")
