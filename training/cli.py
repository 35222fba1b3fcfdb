"""`python -m training full|lora|prompt-tuning|evaluate|params`.

Flags of the training and experiment subcommands come from their settings dataclasses through
`transformers.HfArgumentParser` (RunSettings and the method's Config; ExperimentSettings), so
every documented default can be overridden. User mistakes print one `error:` line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from summarizer import distributed, rouge
from summarizer.cli import Parser, quiet_libraries
from summarizer.errors import UserError
from summarizer.generation import DecodingSettings

from transformers import HfArgumentParser

from .config import RunSettings, from_namespace
from .experiment import ExperimentSettings
from .methods import METHODS

_DESCRIPTIONS = {
    "full": "Full fine-tuning of every weight (the course's 'instruct' model).",
    "lora": "LoRA adapter on the attention q and v projections; the base stays frozen.",
    "prompt-tuning": "Soft prompt (trainable virtual tokens before the input); the base stays frozen.",
}


class _Parser(Parser):
    """Usage mistakes in one line, like every other error of this CLI (once, from the main
    process, under torchrun / accelerate launch)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _SettingsParser(HfArgumentParser):
    """A subcommand whose flags HfArgumentParser makes from dataclasses; mistakes in one line."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m training",
        description="Fine-tune FLAN-T5 on DialogSum (full, LoRA, prompt tuning), run the miniature experiment, evaluate the "
                    "result with ROUGE, or count a method's trainable parameters.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_SettingsParser)
    for name, module in METHODS.items():
        sub = commands.add_parser(name, help=_DESCRIPTIONS[name], description=_DESCRIPTIONS[name],
                                  dataclass_types=[RunSettings, module.Config])
        sub.add_argument("--register", nargs="?", const="", default=None, metavar="REGISTRY_FILE",
                         help="append the registry entry to REGISTRY_FILE (default: "
                              "$SUMMARIZER_REGISTRY, else models.toml at the repository root) "
                              "instead of only printing it")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="ROUGE of a trained output folder",
                                   description="ROUGE of a trained output folder, through the "
                                               "summarizer's evaluation (zero-shot, greedy).")
    evaluate.add_argument("--model-dir", required=True, metavar="DIR", help="output folder of a training run")
    evaluate.add_argument("--base", help="base model of an adapter (default: the one recorded in it)")
    evaluate.add_argument("--data", help="DialogSum source (default $DIALOGSUM_PATH, else the hub)")
    evaluate.add_argument("--split", default="test", help="split to score (default: test)")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N", help="first N rows only")
    evaluate.add_argument("--batch-size", type=int, default=8, metavar="N",
                          help="generate batch size (default: 8)")
    evaluate.add_argument("--max-new-tokens", type=int, default=DecodingSettings.max_new_tokens,
                          metavar="N", help="longest generated summary")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")

    commands.add_parser(
        "experiment", help="the whole experiment in miniature: pre-train, fine-tune three ways, evaluate",
        description="The course experiment in miniature, resumable: a tokenizer and a small T5 "
                    "pre-trained on dialogues only (mini-original), then full fine-tuning, LoRA "
                    "and prompt tuning on it, then ROUGE on the test split. Run it again to "
                    "continue after an interruption.", dataclass_types=[ExperimentSettings])

    params = commands.add_parser("params", help="trainable/all parameters of a method, no weights",
                                 description="Trainable and total parameters of a method on a "
                                             "FLAN-T5 architecture, built on the meta device.")
    params.add_argument("--arch", required=True,
                        help="flan-t5-small | flan-t5-base | flan-t5-large | flan-t5-xl (training/architectures)")
    params.add_argument("--method", default="full", help=f"{' | '.join(METHODS)} (default: full)")
    lora_r = METHODS["lora"].Config().lora_r  # the defaults the training commands use
    virtual_tokens = METHODS["prompt-tuning"].Config().num_virtual_tokens
    params.add_argument("--lora-r", type=int, default=lora_r, metavar="N",
                        help=f"LoRA rank (default: {lora_r})")
    params.add_argument("--num-virtual-tokens", type=int, default=virtual_tokens, metavar="N",
                        help=f"prompt-tuning length (default: {virtual_tokens})")
    params.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _run_training(args) -> int:
    from summarizer.registry import resolve_registry_path

    from .run import train

    module = METHODS[args.command]
    settings = from_namespace(RunSettings, args)
    config = from_namespace(module.Config, args)
    register_file = None
    if args.register is not None:
        register_file = resolve_registry_path(args.register or None).resolve()
    result = train(args.command, settings, config, progress=not args.quiet,
                   register_file=register_file)
    if not distributed.is_main_process():
        return 0
    if result.rouge:
        print("ROUGE: " + "  ".join(f"{k}={result.rouge[k]:.4f}"
                                    for k in rouge.METRICS),
              file=sys.stderr)
    print(f"# wrote {result.output} ({result.global_step} steps, {result.seconds:.0f} s)")
    if register_file is not None:
        print(f"# added to {register_file}:")
    else:
        print("# add to the registry (models.toml), or rerun with --register:")
    print(result.registry_entry, end="")
    return 0


def _run_evaluate(args) -> int:
    from summarizer.data import load_split

    from .evaluation import evaluate_spec, folder_spec

    spec, examples = distributed.agree(lambda: (
        folder_spec(args.model_dir, args.base, name=Path(args.model_dir).name or "trained"),
        load_split(args.data, args.split, limit=args.limit)))
    scores = evaluate_spec(spec, examples, args.batch_size, args.max_new_tokens, not args.quiet)
    if not distributed.is_main_process():
        return 0
    if args.json:
        print(json.dumps({"model_dir": str(args.model_dir), "split": args.split, **scores}))
    else:
        print(f"{spec.name} ({spec.kind}) on {args.split}, n={scores['n']}: " + "  ".join(
            f"{k}={scores[k]:.4f}" for k in rouge.METRICS))
    return 0


def _run_experiment(args) -> int:
    import signal

    from .experiment import run_experiment

    # `kill` (SIGTERM) unwinds like Ctrl-C, so the journal still adds the stopped attempt's time.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    journal = run_experiment(from_namespace(ExperimentSettings, args))
    for stage, record in journal["stages"].items():
        state = "done" if record.get("finished") else "not run"
        print(f"{stage:10s} {state:8s} {record['seconds']:8.0f} s  {record['attempts']} attempt(s)")
    return 0


def _run_params(args) -> int:
    from .params import method_parameters

    if args.method not in METHODS:
        raise UserError(f"unknown method {args.method!r}; choose one of {', '.join(METHODS)}")
    overrides = {"lora": {"lora_r": args.lora_r},
                 "prompt-tuning": {"num_virtual_tokens": args.num_virtual_tokens}}.get(args.method, {})
    count = method_parameters(args.arch, args.method, **overrides)
    print(json.dumps(count.to_dict()) if args.json else count.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    quiet_libraries()
    try:
        if args.command in METHODS:
            return _run_training(args)
        if args.command == "evaluate":
            return _run_evaluate(args)
        if args.command == "experiment":
            return _run_experiment(args)
        return _run_params(args)
    except UserError as err:
        if distributed.is_main_process():  # every process stops; the message is shown once
            print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if distributed.is_main_process():
            print("error: interrupted (complete checkpoints are kept; continue with --resume)",
                  file=sys.stderr)
        return 130
    finally:
        distributed.leave()
