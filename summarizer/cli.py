"""`python -m summarizer summarize | evaluate | score | faithfulness | models | prompts | votes`.

Every command is a thin layer over the package: argument parsing in, one library call, output.
User errors print one line (`error: ...`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import distributed, rouge
from .data import DATA_ENV, DEFAULT_DATA, Example, load_split
from .errors import UserError, read_text_file
from .generation import DecodingSettings
from .prompts import DEFAULT_MAX_PROMPT_TOKENS, MAX_SHOTS, SHOT_STRATEGIES, ShotSettings
from .registry import REGISTRY_ENV, Registry
from .speakers import SPEAKER_MODES
from .templates import (BUILTIN, FLAN_SOURCE, MAX_TEMPLATE_CHARS, PLACEHOLDER, Template, resolve_templates,
                        template_argument)


def _add_registry(parser):
    parser.add_argument("--registry", help=f"registry TOML file (default: ${REGISTRY_ENV} or models.toml)")


def _add_data(parser, required=False):
    parser.add_argument("--data", required=required,
                        help=f"hub dataset id, DialogSum folder, or CSV/JSONL file "
                             f"(default: ${DATA_ENV} or {DEFAULT_DATA})")


def _add_shots(parser, many=False):
    group = parser.add_argument_group("prompting")
    if many:
        group.add_argument("--shots", default="0", help="shot counts, comma-separated, e.g. 0,1,3 (default 0)")
    else:
        group.add_argument("--shots", type=int, default=0, help=f"solved examples before the dialogue, 0..{MAX_SHOTS}")
    group.add_argument("--shot-strategy", choices=SHOT_STRATEGIES, default="random",
                       help="how shots are picked from the train split (default: random, seeded)")
    group.add_argument("--shot-ids", default="", help="comma-separated train ids for --shot-strategy fixed")
    group.add_argument("--shot-seed", type=int, default=42, help="seed for random shots (default 42)")
    group.add_argument("--max-prompt-tokens", type=int, default=DEFAULT_MAX_PROMPT_TOKENS,
                       help=f"prompt token budget: shots are dropped, then the dialogue cut (default {DEFAULT_MAX_PROMPT_TOKENS})")


def _add_prompt(parser, many: str):
    parser.add_argument("--prompt", action="append", default=[], metavar="NAME_OR_TEXT",
                        help=f"prompt template: a built-in name (python -m summarizer prompts), text "
                             f"with {PLACEHOLDER} once (at most {MAX_TEMPLATE_CHARS} characters, every "
                             f"other character literal: pass line breaks as real ones, e.g. bash $'...'), "
                             f"or @FILE to read it from a file; repeat it to {many} (default: each "
                             f"model's registry template, 'experiment' unless its entry names another)")


def _templates(args) -> list[Template]:
    """The --prompt values as templates, in order, each once; [] means each model's default."""
    return resolve_templates(template_argument(value) for value in args.prompt)


def _add_decoding(parser, batch_size=8):
    """Decoding flags; their defaults are DecodingSettings' own (written once, there)."""
    defaults = DecodingSettings()
    group = parser.add_argument_group("decoding")
    group.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                       help=f"default {defaults.max_new_tokens}")
    group.add_argument("--num-beams", type=int, default=defaults.num_beams, help=f"default {defaults.num_beams} (greedy)")
    group.add_argument("--sample", action="store_true", help="sample instead of greedy/beam search")
    group.add_argument("--temperature", type=float, default=defaults.temperature)
    group.add_argument("--top-p", type=float, default=defaults.top_p)
    group.add_argument("--seed", type=int, default=defaults.seed, help=f"sampling seed (default {defaults.seed})")
    group.add_argument("--batch-size", type=int, default=batch_size, help=f"default {batch_size}")
    group.add_argument("--no-repeat-ngram-size", type=int, default=None, metavar="N",
                       help="never repeat an N-gram; 0 turns it off (default: each model's "
                            "generation_config.json; the mini models use 3)")


def _add_speakers(parser):
    parser.add_argument("--speakers", choices=SPEAKER_MODES, default="auto",
                        help="auto (default): names in a chat become #Person1#, #Person2# for models trained "
                             "on DialogSum (registry speakers = \"dialogsum\") and come back in the summary; "
                             "keep: the text as given")


def _decoding(args) -> DecodingSettings:
    return DecodingSettings(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams,
                            do_sample=args.sample, temperature=args.temperature, top_p=args.top_p,
                            seed=args.seed, batch_size=args.batch_size,
                            max_prompt_tokens=args.max_prompt_tokens,
                            no_repeat_ngram_size=args.no_repeat_ngram_size)


def _shot_settings(args, shots: int) -> ShotSettings:
    ids = tuple(i.strip() for i in args.shot_ids.split(",") if i.strip())
    return ShotSettings(shots=shots, strategy=args.shot_strategy, ids=ids, seed=args.shot_seed)


def _shot_pool(args, max_shots: int):
    return load_split(args.data, "train") if max_shots else None


def _models(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise UserError("--models needs at least one model name")
    return names


class Parser(argparse.ArgumentParser):
    """Under torchrun / accelerate launch every process parses the same flags and exits alike;
    only the main process prints help and usage errors, so they are shown once."""

    def _print_message(self, message, file=None):
        if distributed.is_main_process():
            super()._print_message(message, file)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m summarizer",
                    description="Summarize dialogues with FLAN-T5 variants and score them with ROUGE.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("summarize", help="summarize one dialogue",
                            description="Summarize one dialogue given as an argument, a file, or on stdin.")
    p.add_argument("dialogue", nargs="?", help="the dialogue text (default: --file, else stdin)")
    p.add_argument("--file", help="read the dialogue from this file")
    p.add_argument("--model", default="original", help="registry model name (default: original)")
    p.add_argument("--show-prompt", action="store_true", help="print the exact prompt sent to stderr")
    _add_prompt(p, "summarize in several (each summary then starts with [template name])")
    _add_speakers(p)
    _add_registry(p), _add_data(p), _add_shots(p), _add_decoding(p, batch_size=1)
    p.set_defaults(run=cmd_summarize)

    p = commands.add_parser("evaluate", help="ROUGE of models x shot settings on a split",
                            description="Summarize a split (or its first N dialogues) with each model at each "
                                        "shot count, score with ROUGE, print a table and the improvements over 'original'.")
    p.add_argument("--models", required=True, help="comma-separated registry names, e.g. original,instruct,peft-lora")
    p.add_argument("--split", default="test", help="train, validation (dev) or test (default test)")
    p.add_argument("--limit", type=int, help="only the first N dialogues")
    p.add_argument("--output", help="write the results: .json (everything) or .csv (one row per summary)")
    p.add_argument("--reference", choices=rouge.REFERENCE_CHOICES, default="all",
                   help="which reference to score against; 'all' takes each metric's best (default all)")
    p.add_argument("--use-stemmer", action="store_true", help="Porter-stem words before matching (default off, as evaluate's rouge)")
    _add_prompt(p, "score every model in each")
    _add_speakers(p)
    _add_registry(p), _add_data(p), _add_shots(p, many=True), _add_decoding(p, batch_size=16)
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("score", help="ROUGE of an existing predictions file",
                            description="Score predictions (one summary per line in split order, or JSONL with "
                                        "id and summary) against a split's references.")
    p.add_argument("--predictions", required=True, help="text file (one per line) or .jsonl with id and summary")
    p.add_argument("--split", default="test", help="default test")
    p.add_argument("--reference", choices=rouge.REFERENCE_CHOICES, default="all", help="default all")
    p.add_argument("--use-stemmer", action="store_true", help="Porter-stem words before matching")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data(p)
    p.set_defaults(run=cmd_score)

    p = commands.add_parser("models", help="list the registry's models and their status",
                            description="Each registry entry with its status: ready, loaded, or error and why.")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_registry(p)
    p.set_defaults(run=cmd_models)

    p = commands.add_parser("prompts", help="list the built-in prompt templates",
                            description="The built-in prompt templates, by name, with their text; "
                                        "--prompt takes a name or a template of your own.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_prompts)

    p = commands.add_parser("faithfulness", help="what each summary says that its dialogue does not",
                            description="For each JSONL row with dialogue and summary (optional id): the "
                                        "summary's support in [0, 1], its unsupported spans and its sentences.")
    p.add_argument("--input", required=True, help="JSONL file: one object a line with dialogue, summary, optional id")
    p.add_argument("--output", help="write JSONL here (default: standard output)")
    p.set_defaults(run=cmd_faithfulness)

    _add_votes(commands)
    return parser


def _add_votes(commands) -> None:
    from .votes.export import FORMATS
    from .votes.leaderboard import SHOT_FILTERS
    from .votes.store import VOTES_DB_ENV

    p = commands.add_parser("votes", help="people's votes from the app: the leaderboard, or an export",
                            description="The votes cast in the app's Compare tab, read from its SQLite database.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_help = f"the votes database (default: ${VOTES_DB_ENV} or data/votes.sqlite3, as the app)"

    a = actions.add_parser("stats", help="the leaderboard, as the app's Leaderboard tab shows it",
                           description="Per model: votes, wins, win rate, Bradley-Terry / Luce strength with "
                                       "a 95% bootstrap interval, mean ROUGE; and how often people and ROUGE agree.")
    a.add_argument("--db", help=db_help)
    a.add_argument("--shots", choices=SHOT_FILTERS, default="all", help="only votes on this shot mode (default all)")
    a.add_argument("--blind-only", action="store_true", help="only votes cast blind")
    a.add_argument("--json", action="store_true", help="print the leaderboard as JSON")
    a.set_defaults(run=cmd_votes_stats)

    a = actions.add_parser("export", help="every vote with the comparison it was cast on",
                           description="JSONL: one vote a line, its cards nested. CSV: one row per card shown. "
                                       "Hashed client addresses are never exported; dialogues only when shared.")
    a.add_argument("--db", help=db_help)
    a.add_argument("--format", choices=FORMATS, default="jsonl", help="default jsonl")
    a.add_argument("--output", help="write to this file (default: standard output)")
    a.set_defaults(run=cmd_votes_export)


def _read_dialogue(args) -> str:
    if args.dialogue is not None:
        return args.dialogue
    if args.file:
        return read_text_file(args.file)
    if sys.stdin is None or sys.stdin.isatty():
        raise UserError("give a dialogue as an argument, with --file, or on stdin")
    return sys.stdin.read()


def cmd_summarize(args) -> int:
    from .generation import summarize
    dialogue = _read_dialogue(args).strip()
    templates = _templates(args)
    registry = Registry.from_file(args.registry)
    registry.spec(args.model)  # an unknown name fails before the shot pool is loaded
    shots = _shot_settings(args, args.shots)
    results = summarize(registry, [args.model], [Example("input", dialogue)], shots, _decoding(args),
                        _shot_pool(args, args.shots), speakers=args.speakers, templates=templates)
    for result in results:
        if result.error:
            raise UserError(result.error)
    labelled = len(results) > 1
    for result in results:
        label = f"[{result.template}] " if labelled else ""
        for notice in [*result.prompt.notices, result.speaker_note]:
            if notice:
                print(f"note: {label}{notice}", file=sys.stderr)
        if result.speaker_mapping and result is results[0]:
            print("note: speakers " + ", ".join(f"{n} -> {t}" for n, t in result.speaker_mapping.items()),
                  file=sys.stderr)
        if args.show_prompt:
            print(f"{label}{result.prompt.text}", file=sys.stderr)
        print(f"{label}{result.summary}")
    return 0


def _evaluation_inputs(args):
    """(registry, model names, shot counts, examples, shot pool, templates), checked before any loading."""
    try:
        shot_counts = [int(s) for s in args.shots.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--shots takes comma-separated numbers, got {args.shots!r}") from None
    if not shot_counts:
        raise UserError("--shots needs at least one number")
    for count in shot_counts:
        ShotSettings(shots=count)  # validates the range before any loading
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    templates = _templates(args)
    registry = Registry.from_file(args.registry)
    names = _models(args.models)
    for name in names:
        registry.spec(name)
    examples = load_split(args.data, args.split, args.limit)
    return registry, names, shot_counts, examples, _shot_pool(args, max(shot_counts)), templates


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate, format_table
    # Under a launcher every process checks its inputs, and a refusal on one stops them all.
    registry, names, shot_counts, examples, pool, templates = distributed.agree(lambda: _evaluation_inputs(args))
    report = evaluate(registry, names, examples, shot_counts, _decoding(args),
                      _shot_settings(args, 0), pool,
                      reference=args.reference, use_stemmer=args.use_stemmer, progress=True,
                      speakers=args.speakers, templates=templates)
    unscored = 1 if all(row["n"] == 0 for row in report.aggregate) else 0  # nothing could be scored
    if not distributed.is_main_process():  # every process has the report; one prints and writes it
        return unscored
    print(format_table(report.aggregate, ["model", "template", "shots", "n", *rouge.METRICS, "support",
                                          "unsupported_particulars", "seconds", "errors"]))
    print("support: mean faithfulness support in [0, 1]; unsupported_particulars: share of summaries "
          "with a name or number the dialogue does not have (docs/faithfulness.md)")
    print("\nDoes it read the input? distinct summaries, summaries repeating a 3-gram 3+ times, "
          "ROUGE-1 against another dialogue's reference:")
    print(format_table(report.aggregate, ["model", "template", "shots", "distinct", "repetitive", "rouge1",
                                          "rouge1_shuffled"]))
    for row in report.aggregate:
        if row["error"]:
            print(f"note: {row['model']} ({row['template']}, {row['shots']}-shot): {row['error']}", file=sys.stderr)
    gains = report.improvements()
    if gains:
        print("\nAbsolute improvement over original:")
        print(format_table(gains, ["model", "template", "shots", *rouge.METRICS], percent=True))
    custom = {n: t for n, t in report.settings["templates"].items() if n not in BUILTIN}
    for name, text in custom.items():
        print(f"\n{name}: {json.dumps(text, ensure_ascii=False)}")
    if args.output:
        print(f"\nwrote {report.save(args.output)}")
    return unscored


def read_predictions(path: str, examples: list[Example]) -> list[str]:
    """Predictions in split order: one per line, or JSONL objects with id and summary."""
    file = Path(path)
    text = read_text_file(file)
    lines = text.splitlines()
    if lines and lines[-1] == "":
        lines.pop()
    if file.suffix.lower() in (".jsonl", ".json"):
        by_id = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                by_id[str(row["id"])] = str(row["summary"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path}:{number}: expected a JSON object with id and summary") from None
        missing = [e.id for e in examples if e.id not in by_id]
        if missing:
            raise UserError(f"{path}: no prediction for {len(missing)} of {len(examples)} dialogues (first: {missing[0]})")
        return [by_id[e.id] for e in examples]
    if len(lines) != len(examples):
        raise UserError(f"{path} has {len(lines)} lines but the split has {len(examples)} dialogues: "
                        "give one summary per line, in split order")
    return lines


def cmd_score(args) -> int:
    examples = load_split(args.data, args.split)
    predictions = read_predictions(args.predictions, examples)
    scores = [rouge.score(p, rouge.select_references(e.references, args.reference), args.use_stemmer)
              for p, e in zip(predictions, examples)]
    result = rouge.aggregate(scores)
    if args.json:
        print(json.dumps({**result, "reference": args.reference, "use_stemmer": args.use_stemmer}))
    else:
        for metric in rouge.METRICS:
            print(f"{metric:10s} {result[metric]:.4f}")
        print(f"n          {result['n']}")
    return 0


def cmd_faithfulness(args) -> int:
    from .faithfulness import check_rows, read_rows
    lines = [json.dumps(row, ensure_ascii=False) for row in check_rows(read_rows(args.input))]
    text = "".join(line + "\n" for line in lines)
    if not args.output:
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)  # all rows or none under the real name
    except OSError as err:
        raise UserError(f"cannot write {args.output}: {err.strerror}") from None
    print(f"wrote {len(lines)} row(s) to {args.output}", file=sys.stderr)
    return 0


def cmd_prompts(args) -> int:
    templates = list(BUILTIN.values())
    if args.json:
        print(json.dumps({"templates": [t.to_dict() for t in templates], "flan_source": FLAN_SOURCE},
                         indent=2, ensure_ascii=False))
        return 0
    width = max(len(t.name) for t in templates)
    for template in templates:
        # JSON quoting shows the line breaks and a trailing space, which are part of the prompt.
        print(f"{template.name.ljust(width)}  {json.dumps(template.text, ensure_ascii=False)}")
        print(f"{'':{width}}  {template.description}")
    print(f"\nFLAN templates: {FLAN_SOURCE}")
    print(f"--prompt takes a name above, text with {PLACEHOLDER} once, or @FILE (docs/prompts.md)")
    return 0


def cmd_models(args) -> int:
    registry = Registry.from_file(args.registry)
    statuses = registry.statuses(check=True)
    if args.json:
        print(json.dumps([{**s.__dict__, "path": registry.spec(s.name).path, "base": registry.spec(s.name).base,
                           "template": registry.spec(s.name).default_template.name} for s in statuses], indent=2))
        return 0
    width = max(len(s.name) for s in statuses)
    for s in statuses:
        spec = registry.spec(s.name)
        where = spec.path or "(no weights)"
        if spec.base:
            where += f" on {spec.base}"
        print(f"{s.name.ljust(width)}  {s.kind:13s}  {s.state:7s}  {where}" + (f"\n{'':{width}}  -> {s.reason}" if s.reason else ""))
    return 0


def cmd_votes_stats(args) -> int:
    from .evaluation import format_table
    from .votes import VoteStore
    from .votes.leaderboard import compute

    board = compute(VoteStore.open_existing(args.db).ballots(), args.shots, args.blind_only)
    if args.json:
        print(json.dumps(board.to_dict(), indent=2))
        return 0
    shown = lambda value: "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
    columns = ["model", "votes", "wins", "ties", "all_bad", "win_rate", "strength", "low", "high",
               "mean_rouge1", "mean_rougeL", "mean_support"]
    rows = [{c: shown(row[c]) for c in columns} for row in board.to_dict()["standings"]]
    print(f"{board.votes} vote(s): {board.best} best-of, {board.ties} all equally good, {board.all_bad} all bad"
          f" (shots: {args.shots}{', blind only' if args.blind_only else ''})")
    if rows:
        print(format_table(rows, columns))
    for metric, label in (("rouge1", "ROUGE-1"), ("rougeL", "ROUGE-L")):
        entry = board.agreement[metric]
        if entry["votes"]:
            print(f"people's pick had the highest {label}: {entry['agree']}/{entry['votes']} "
                  f"({entry['rate']:.0%}; random pick {entry['chance']:.0%})")
    entry = board.agreement["support"]
    if entry["votes"]:
        print(f"people's pick was the best-supported summary: {entry['agree']}/{entry['votes']} "
              f"({entry['rate']:.0%}; random pick {entry['chance']:.0%})")
    return 0


def cmd_votes_export(args) -> int:
    from .votes import VoteStore
    from .votes.export import write

    ballots = VoteStore.open_existing(args.db).ballots()
    if not args.output:
        write(ballots, sys.stdout, args.format)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as handle:
            write(ballots, handle, args.format)
    except OSError as err:
        raise UserError(f"cannot write {args.output}: {err.strerror}") from None
    print(f"wrote {len(ballots)} vote(s) to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        return args.run(args)
    except UserError as err:
        if distributed.is_main_process():  # every process stops; the message is shown once
            print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        distributed.leave()


def quiet_libraries() -> None:
    """Library chatter (weight-loading bars, tie warnings) would bury our one-line messages."""
    import warnings
    try:
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=FutureWarning)
