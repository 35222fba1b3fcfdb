"""The miniature experiment's last stage: the four mini models and longest-3 on the test split,
through `summarizer evaluate`'s own path, scored the project's way and the DialogSum paper's way.

Writes into the experiment folder:
- models.toml: the registry of the mini models (what the evaluation loads, as the app would);
- results.json: the aggregate the Studio's Benchmark tab reads (no per-dialogue rows: those quote
  DialogSum, which may not be committed);
- RESULTS.md: the table README quotes;
- a "Test split" section in each model's card.
"""

from __future__ import annotations

import json
from pathlib import Path

from summarizer.data import load_split
from summarizer.evaluation import evaluate, rescore
from summarizer.generation import DecodingSettings
from summarizer.registry import ModelSpec, Registry
from summarizer.templates import DEFAULT_TEMPLATE

from .card import duration
from .checkpoints import write_atomically
from .stages import LICENSE_NOTE, MODEL_STAGES

ORIGINAL = "mini-original"
MODELS = ("mini-original", "mini-instruct", "mini-lora", "mini-prompt", "longest-3")
PAPER = {"reference": "summary1", "use_stemmer": True}  # the DialogSum paper's scoring
SECTION = "\n## Test split (the miniature experiment)\n"


DIALOGSUM = "dialogsum"  # trained on DialogSum's #Person1# tags: chats are mapped to them


def mini_specs() -> list[ModelSpec]:
    """Registry entries relative to the experiment folder (paths start with ./)."""
    base = f"./{ORIGINAL}"
    return [
        ModelSpec(ORIGINAL, "seq2seq", base, description=(
            "Miniature T5 pre-trained by this project on DialogSum dialogues only (never a "
            "summary): plays FLAN-T5 as released"), speakers=DIALOGSUM),
        ModelSpec("mini-instruct", "seq2seq", "./mini-instruct", description=(
            "mini-original fully fine-tuned on DialogSum (miniature experiment)"), speakers=DIALOGSUM,
            template=DEFAULT_TEMPLATE),
        ModelSpec("mini-lora", "lora", "./mini-lora", base, description=(
            "LoRA on q,v of mini-original (miniature experiment)"), speakers=DIALOGSUM,
            template=DEFAULT_TEMPLATE),
        ModelSpec("mini-prompt", "prompt-tuning", "./mini-prompt", base, description=(
            "Soft prompt on mini-original (miniature experiment)"), speakers=DIALOGSUM,
            template=DEFAULT_TEMPLATE),
        ModelSpec("longest-3", "extractive", description=(
            "The DialogSum paper's baseline: the three longest utterances")),
    ]


def _training_facts(output: Path, journal: dict) -> dict[str, dict]:
    """Per model: trainable share and training time, from each folder's training_config.json and
    the experiment journal (whose seconds add up every attempt of a resumed stage)."""

    stages = journal["stages"]
    facts = {}
    for stage, model in MODEL_STAGES.items():
        config_file = output / model / "training_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        details = stages.get(stage, {}).get("details", {})
        facts[model] = {"seconds": stages.get(stage, {}).get("seconds"),
                        "global_step": config.get("global_step"),
                        "epochs": details.get("config", {}).get("num_train_epochs"),
                        "trainable_parameters": config.get("trainable_parameters"),
                        "all_parameters": config.get("all_parameters")}
    full = facts["mini-instruct"]
    for model in ("mini-instruct", "mini-lora", "mini-prompt"):
        seconds, steps = facts[model]["seconds"], facts[model]["global_step"]
        ok = seconds and steps and full["seconds"] and full["global_step"]
        facts[model]["time_vs_full"] = seconds / full["seconds"] if ok else None
        # The PEFT stages may run fewer epochs than full fine-tuning: per step is the fair ratio.
        facts[model]["step_time_vs_full"] = (
            (seconds / steps) / (full["seconds"] / full["global_step"]) if ok else None)
    return facts


def set_decoding_defaults(output: Path, no_repeat_ngram_size: int) -> None:
    """The preset's decoding default, in the generation_config.json of each full model (the
    adapters decode on mini-original's)."""
    from transformers import GenerationConfig

    for model in (ORIGINAL, "mini-instruct"):
        folder = output / model
        config = GenerationConfig.from_pretrained(folder)
        config.no_repeat_ngram_size = no_repeat_ngram_size
        write_atomically(folder / "generation_config.json", config.to_json_string())


def evaluate_experiment(settings, preset, output: Path, data: str) -> dict:
    set_decoding_defaults(output, preset.no_repeat_ngram_size)
    registry_file = output / "models.toml"
    write_atomically(registry_file, "# The miniature experiment's models (python -m training experiment).\n\n"
           + "\n".join(spec.to_toml() for spec in mini_specs()))
    registry = Registry.from_file(registry_file)
    examples = load_split(data, "test", limit=settings.limit_test)
    # The CLI's defaults (batch 16, up to 200 new tokens, greedy): `summarizer evaluate` reproduces it.
    report = evaluate(registry, MODELS, examples, decoding=DecodingSettings(batch_size=16),
                      progress=not settings.quiet)
    paper = rescore(report, examples, **PAPER)
    # The same models with the repetition guard off: what the weights alone do.
    unguarded = evaluate(registry, MODELS[:-1], examples, progress=not settings.quiet,
                         decoding=DecodingSettings(batch_size=16, no_repeat_ngram_size=0))
    unguarded_paper = rescore(unguarded, examples, **PAPER)
    journal = json.loads((output / "experiment.json").read_text())
    facts = _training_facts(output, journal)
    results = {
        "settings": {**report.settings, "split": "test", "data": "DialogSum test split",
                     "command": ("python -m summarizer evaluate --models " + ",".join(MODELS)
                                 + " --split test --data ../shared/data/dialogsum")},
        "aggregate": report.aggregate,
        "improvements_over_original": report.improvements(ORIGINAL),
        "paper_scoring": {"settings": paper.settings, "aggregate": paper.aggregate},
        "without_repetition_guard": {"settings": unguarded_paper.settings,
                                     "aggregate": unguarded_paper.aggregate},
        "training": facts,
    }
    write_atomically(output / "results.json", json.dumps(results, indent=2))
    table = results_table(report.aggregate, paper.aggregate, facts)
    guard = (f"Decoding: greedy, zero-shot, up to 200 new tokens, and the models' own "
             f"`no_repeat_ngram_size={preset.no_repeat_ngram_size}` (generation_config.json). "
             f"Without it (`--no-repeat-ngram-size 0`), paper's scoring:\n\n"
             + guard_table(unguarded_paper.aggregate))
    write_atomically(output / "RESULTS.md", f"# The miniature experiment: {len(examples)} test dialogues\n\n"
           f"{table}\n\n{guard}\n\nReproduce: `{results['settings']['command']}` (add "
           f"`--reference summary1 --use-stemmer` for the paper's scoring), run from the repository "
           f"root with `--registry {registry_file.as_posix()}` or the root models.toml.\n")
    for model in MODELS[:-1]:
        card = output / model / "README.md"
        if card.is_file():
            text = card.read_text(encoding="utf-8").split(SECTION)[0]
            write_atomically(card, text.rstrip("\n") + "\n" + SECTION + experiment_section(
                model, journal, facts[model], f"{table}\n\n{guard}", len(examples)))
    return {"n": len(examples), "rouge1": {r["model"]: r["rouge1"] for r in report.aggregate},
            "rouge1_paper": {r["model"]: r["rouge1"] for r in paper.aggregate}}


def experiment_section(model: str, journal: dict, facts: dict, table: str, n: int) -> str:

    seconds = facts.get("seconds")
    return (f"\n{LICENSE_NOTE}\n\n"
            f"- **Made by:** `{journal['command']}` (seed {journal['settings']['seed']}), "
            f"which writes every stage and skips finished ones\n"
            f"- **Training time, all attempts:** {duration(seconds) if seconds else 'n/a'}, "
            f"{facts.get('global_step')} optimizer steps\n\n"
            f"Greedy decoding, zero-shot, {n} test dialogues, every model of the experiment "
            f"(`paper`: the DialogSum paper's scoring, first reference, stemmed; the others: all "
            f"references, best of three, no stemming):\n\n{table}\n")


def guard_table(paper: list[dict]) -> str:
    lines = ["| model | ROUGE-1 (paper) | ROUGE-L (paper) | distinct | repetitive "
             "| own − shuffled ROUGE-1 |", "|---|---:|---:|---:|---:|---:|"]
    for p in paper:
        lines.append(f"| {p['model']} | {p['rouge1']:.4f} | {p['rougeL']:.4f} | "
                     f"{p.get('distinct', 0):.1%} | {p.get('repetitive', 0):.1%} | "
                     f"{p['rouge1'] - p.get('rouge1_shuffled', 0):+.4f} |")
    return "\n".join(lines)


def _share(value, spec: str) -> str:
    """Faithfulness figures (docs/faithfulness.md), '–' in results written before they existed."""
    return "–" if value is None else format(value, spec)


def results_table(default: list[dict], paper: list[dict], facts: dict[str, dict]) -> str:
    paper_by_model = {r["model"]: r for r in paper}
    lines = ["| model | trainable | epochs | time × full (run, per step) | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-1 (paper) "
             "| ROUGE-2 (paper) | ROUGE-L (paper) | distinct | repetitive | own − shuffled ROUGE-1 "
             "| support | unsupported name/number |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in default:
        p, f = paper_by_model[row["model"]], facts.get(row["model"], {})
        share = (f"{100 * f['trainable_parameters'] / f['all_parameters']:.2f}%"
                 if f.get("trainable_parameters") and f.get("all_parameters") else "–")
        ratio = (f"{f['time_vs_full']:.2f}, {f['step_time_vs_full']:.2f}"
                 if f.get("time_vs_full") else "–")
        epochs = f"{f['epochs']:g}" if f.get("epochs") else "–"
        lines.append(
            f"| {row['model']} | {share} | {epochs} | {ratio} | {row['rouge1']:.4f} | {row['rouge2']:.4f} | "
            f"{row['rougeL']:.4f} | {p['rouge1']:.4f} | {p['rouge2']:.4f} | {p['rougeL']:.4f} | "
            f"{row.get('distinct', 0):.1%} | {row.get('repetitive', 0):.1%} | "
            f"{p['rouge1'] - p.get('rouge1_shuffled', 0):+.4f} | {_share(row.get('support'), '.3f')} | "
            f"{_share(row.get('unsupported_particulars'), '.1%')} |")
    return "\n".join(lines)
