"""The faithfulness check on real summary errors, held out, and its time per summary.

Part 1 (quality): the labelled set (assets/faithfulness: 643 sentences of BART-large's and the
mini models' DialogSum test summaries, read by hand) through summarizer.faithfulness_fit's 5-fold
cross-validation grouped by dialogue: AUC per error type (each type against the correct sentences)
and over all, beside the baseline "share of the sentence's words not in the dialogue"; underline
precision and recall at the threshold each fold chose on its training part; the same per system.

Part 2 (speed): `faithfulness.check` on every summary the set labels and every DialogSum dev
reference, after one warm-up call (the first call imports the stemmer): p50, p99 and max in ms.

    python benchmarks/bench_faithfulness_real.py [--data ../shared/data/dialogsum]
        [--bart ~/.cache/dialogsum-studio/bart-large-test_output.txt]
        [--mini ~/.cache/dialogsum-studio/mini-test160.csv] [--synthetic 1000] [--json out.json]

BART's summaries come from the DialogSum authors' repository (Baseline/test_output.txt, see
assets/faithfulness/README.md); the mini models' from the `evaluate` command printed when that
file is missing. A part whose text is absent is left out, and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from summarizer import faithfulness, faithfulness_fit as fit, faithfulness_labels as labels  # noqa: E402


def quality(args) -> dict:
    rows, skipped = labels.load(args.data, args.bart, args.mini)
    if not Path(args.bart).exists():
        print(f"no BART summaries at {args.bart}: its sentences are left out", file=sys.stderr)
    if not Path(args.mini).exists():
        print(f"no mini-model summaries at {args.mini}; make them with:\n  "
              + labels.MINI_COMMAND.format(data=args.data, out=args.mini), file=sys.stderr)
    if not rows:
        return {"skipped": skipped}
    names = faithfulness._model().features
    features, _ = fit.labelled_matrix(rows)
    X, y = fit.as_array(features, names), np.array([float(r.wrong) for r in rows])
    if args.synthetic:
        synth, synth_y, _ = fit.synthetic_matrix(args.data, args.synthetic, 0)
        synth_X = fit.as_array(synth, names)
    else:
        synth_X, synth_y = np.zeros((0, len(names))), np.zeros(0)
    risk, shown = fit.cross_validate(X, y, np.array([r.id for r in rows]), synth_X, synth_y, 1.0, 4.0)
    baseline = np.array([fit.plain_new_words(r.dialogue, r.sentence) for r in rows])
    report = {"skipped": skipped, "all": fit.summarise(rows, risk, shown, baseline, labels.TYPES), "systems": {}}
    for system in sorted({r.system for r in rows}):
        pick = np.array([r.system == system for r in rows])
        report["systems"][system] = fit.summarise([r for r, p in zip(rows, pick) if p], risk[pick],
                                                  shown[pick], baseline[pick], labels.TYPES)
    return report


def speed(args) -> dict:
    items = []
    rows, _ = labels.load(args.data, args.bart, args.mini)
    items += list({(r.system, r.id): (r.dialogue, r.summary) for r in rows}.values())
    with (Path(args.data) / "dialogsum.dev.jsonl").open(encoding="utf-8") as handle:
        items += [(row["dialogue"], row["summary"]) for row in map(json.loads, handle)]
    faithfulness.check(*items[0])  # warm-up: imports and the model file
    times = []
    for dialogue, summary in items:
        started = time.perf_counter()
        faithfulness.check(dialogue, summary)
        times.append((time.perf_counter() - started) * 1000)
    times = np.array(times)
    return {"summaries": len(times), "p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99)), "max_ms": float(times.max()),
            "load": os.getloadavg()[0]}


def _row(name: str, part: dict) -> str:
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else "–"
    return (f"{name:12s} {part['n']:5d} {cell(part['auc']):>7s} {cell(part['baseline_auc']):>9s} "
            f"{cell(part.get('precision')):>9s} {cell(part.get('recall')):>7s}")


def show(report: dict) -> None:
    if "all" not in report:
        print("no labelled text at hand", report["skipped"])
        return
    print(f"labelled sentences: {report['all']['sentences']}, wrong {report['all']['wrong']}; "
          f"left out {report['skipped']}")
    print(f"{'':12s} {'n':>5s} {'AUC':>7s} {'baseline':>9s} {'precision':>9s} {'recall':>7s}")
    for name, part in [("all", report["all"])] + list(report["systems"].items()):
        print(f"-- {name}")
        print(_row("any error", {"n": part["wrong"], **part["any"]}))
        for kind, values in part["types"].items():
            if values["n"]:
                print(_row(kind, {**values, "precision": None}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=labels.DEFAULT_DATA)
    parser.add_argument("--bart", type=Path, default=labels.DEFAULT_BART)
    parser.add_argument("--mini", type=Path, default=labels.DEFAULT_MINI)
    parser.add_argument("--synthetic", type=int, default=1000, help="train dialogues to corrupt for fitting")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "dialogsum.test.jsonl").exists():
        sys.exit(f"no DialogSum data at {args.data} (set --data)")
    report = quality(args)
    show(report)
    report["speed"] = speed(args)
    s = report["speed"]
    print(f"check: {s['summaries']} summaries, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, "
          f"max {s['max_ms']:.2f} ms (load {s['load']:.1f})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
