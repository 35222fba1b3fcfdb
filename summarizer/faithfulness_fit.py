"""Fit and measure the faithfulness check's sentence model on real errors.

    python -m summarizer.faithfulness_fit [--data ../shared/data/dialogsum] [--bart PATH] [--mini PATH]
                                          [--write] [--report report.json]

The labelled set (assets/faithfulness, summarizer.faithfulness_labels) gives each sentence the
check's features (summarizer.faithfulness: `Sentence.features`). Next to it, synthetic errors:
DialogSum *train* references with one sentence corrupted the way benchmarks/bench_faithfulness.py
does (the benchmark itself reads dev, so it is never fitted on), weighed so that they count as
much as the labelled set together.

Model: logistic regression with non-negative coefficients (a feature is evidence of an error or
nothing; so a sentence with no evidence keeps support 1) and an L2 penalty, fitted with
scipy's L-BFGS-B. Reported numbers are out-of-fold: 5 folds grouped by dialogue (every sentence
of a dialogue, from every system, is held out together); the underline threshold of each fold is
chosen on its training part (the lowest risk at which at most 5% of the correct sentences are
underlined) and applied to the held-out part. With --write, the model fitted on everything and the threshold chosen on the
out-of-fold risks go to summarizer/faithfulness_model.json (atomically).

Needs scikit-learn and scipy (for fitting only; the check reads the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import faithfulness, faithfulness_labels as labels

ROOT = Path(__file__).resolve().parent.parent
MAX_FALSE_ALARMS = 0.05  # at most 1 correct sentence in 20 underlined
SHOWN_PRECISION = 0.5  # a span kind whose underlined sentences are right more often than wrong is hidden...
SHOWN_EVIDENCE = 10  # ...once it has been seen in this many labelled sentences


def labelled_matrix(rows: list[labels.Labelled]):
    """Features of every labelled sentence, checked once per summary, in label order."""
    by_summary: dict[tuple[str, str], faithfulness.Report] = {}
    features, sentences = [], []
    for row in rows:
        key = (row.system, row.id)
        if key not in by_summary:
            by_summary[key] = faithfulness.check(row.dialogue, row.summary)
        match = [s for s in by_summary[key].sentences if s.start == row.start and s.end == row.end]
        if not match:
            raise SystemExit(f"{row.system} {row.id}: no checked sentence at {row.start}:{row.end}"
                             " (the sentence splitter changed: relabel)")
        features.append(match[0].features)
        sentences.append(match[0])
    return features, sentences


def synthetic_matrix(data: Path, limit: int, seed: int):
    """Features and labels of corrupted and intact sentences of DialogSum train references."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_faithfulness as bench  # the corruptions the benchmark measures
    items = [i for i in bench.build(bench.load("train", limit, data), seed) if i[1] == "sentence"]
    features, targets, kinds = [], [], []
    for kind, _, label, dialogue, text in items:
        report = faithfulness.check(dialogue, text)
        if report.sentences:
            worst = max(report.sentences, key=lambda s: s.risk)
            features.append(worst.features)
            targets.append(label)
            kinds.append(kind)
    return features, np.array(targets), kinds


def plain_new_words(dialogue: str, text: str) -> float:
    """The baseline: the share of the text's words the dialogue does not have (as
    benchmarks/bench_faithfulness.py scores it)."""
    words = [w.lower() for w in re.findall(r"#\w+#|\w+(?:'\w+)?", text)]
    present = {w.lower() for w in re.findall(r"#\w+#|\w+(?:'\w+)?", dialogue)}
    return sum(w not in present for w in words) / len(words) if words else 0.0


def as_array(features: list[dict], names) -> np.ndarray:
    return np.array([[f.get(n, 0.0) for n in names] for f in features], dtype=float)


def fit(X: np.ndarray, y: np.ndarray, weight: np.ndarray, penalty: float):
    """(coef >= 0, intercept) minimising weighted log-loss + penalty * |coef|^2 / 2."""
    from scipy.optimize import minimize

    def loss(theta):
        z = X @ theta[:-1] + theta[-1]
        p = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
        value = np.sum(weight * (np.logaddexp(0, z) - y * z)) + penalty * np.sum(theta[:-1] ** 2) / 2
        grad_z = weight * (p - y)
        return value, np.append(X.T @ grad_z + penalty * theta[:-1], grad_z.sum())

    bounds = [(0, None)] * X.shape[1] + [(None, None)]
    result = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:-1], result.x[-1]


def predict(X: np.ndarray, coef, intercept) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(X @ coef + intercept, -30, 30)))


def choose_threshold(risk: np.ndarray, wrong: np.ndarray) -> float:
    """The lowest risk at which at most MAX_FALSE_ALARMS of the correct sentences are underlined:
    a rule that does not depend on how many wrong sentences the labelled set happens to have."""
    correct = np.sort(risk[~wrong])
    allowed = int(np.floor(MAX_FALSE_ALARMS * len(correct)))
    # Underlined: risk >= threshold. Just above the (allowed + 1)-th highest correct risk.
    return float(np.nextafter(correct[-allowed - 1], 1.0)) if len(correct) > allowed else 0.0


def cross_validate(X, y, groups, synth_X, synth_y, penalty, share=1.0, folds=5, seed=0):
    """Out-of-fold risk and underline decisions for every labelled sentence."""
    from sklearn.model_selection import GroupKFold
    risk = np.zeros(len(y))
    shown = np.zeros(len(y), dtype=bool)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(X, y, groups):
        coef, intercept = fit_both(X[train], y[train], synth_X, synth_y, penalty, share)
        train_risk = predict(X[train], coef, intercept)
        threshold = choose_threshold(train_risk, y[train] == 1)
        risk[test] = predict(X[test], coef, intercept)
        shown[test] = risk[test] >= threshold
    return risk, shown


def fit_both(X, y, synth_X, synth_y, penalty, share=1.0):
    """Fit on labelled and synthetic sentences, the synthetic ones weighing `share` times as much
    as the labelled ones in total."""
    weight = np.concatenate([np.ones(len(y)), np.full(len(synth_y), share * len(y) / max(1, len(synth_y)))])
    return fit(np.vstack([X, synth_X]), np.concatenate([y, synth_y]), weight, penalty)


def auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, scores))


def summarise(rows, risk, shown, baseline, types) -> dict:
    """AUC (any error and per type, each type against the correct sentences), underline precision
    and recall, beside the new-word baseline."""
    wrong = np.array([r.wrong for r in rows])
    report = {"sentences": len(rows), "wrong": int(wrong.sum()), "types": {}}
    report["any"] = {"auc": auc(risk, wrong), "baseline_auc": auc(baseline, wrong),
                     "underlined": int(shown.sum()),
                     "precision": float(wrong[shown].mean()) if shown.any() else None,
                     "recall": float(shown[wrong].mean())}
    kinds = np.array([r.type or "" for r in rows])
    for kind in types:
        pick = (kinds == kind) | ~wrong
        positive = kinds[pick] == kind
        report["types"][kind] = {"n": int(positive.sum()), "auc": auc(risk[pick], positive),
                                 "baseline_auc": auc(baseline[pick], positive),
                                 "recall": float(shown[kinds == kind].mean()) if positive.any() else None}
    return report


def kind_precision(rows, sentences, shown) -> dict[str, dict]:
    """For each span kind: in how many labelled sentences the check finds one, how often such a
    sentence is wrong, and the same among the sentences it underlines (out-of-fold)."""
    found: dict[str, list[tuple[bool, bool]]] = {}
    for row, sentence, underlined in zip(rows, sentences, shown):
        for kind in {s.kind for s in sentence.candidates}:
            found.setdefault(kind, []).append((row.wrong, bool(underlined)))
    table = {}
    for kind, seen in sorted(found.items()):
        kept = [wrong for wrong, underlined in seen if underlined]
        table[kind] = {"sentences": len(seen), "precision": sum(w for w, _ in seen) / len(seen),
                       "underlined": len(kept), "underlined_precision": sum(kept) / len(kept) if kept else None}
    return table


def shown_kinds(table: dict[str, dict]) -> list[str]:
    """Kinds worth showing: all but those seen often enough to know their underlines mislead."""
    hidden = {k for k, v in table.items() if v["underlined"] >= SHOWN_EVIDENCE
              and v["underlined_precision"] < SHOWN_PRECISION}
    return [k for k in faithfulness.KINDS if k not in hidden]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=labels.DEFAULT_DATA)
    parser.add_argument("--bart", type=Path, default=labels.DEFAULT_BART)
    parser.add_argument("--mini", type=Path, default=labels.DEFAULT_MINI)
    parser.add_argument("--synthetic", type=int, default=1000, help="train dialogues to corrupt (0: none)")
    parser.add_argument("--penalty", type=float, default=1.0)
    parser.add_argument("--synthetic-share", type=float, default=4.0,
                        help="total weight of the synthetic sentences, relative to the labelled ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write summarizer/faithfulness_model.json")
    parser.add_argument("--report", type=Path, help="write the measurements as JSON here")
    args = parser.parse_args(argv)
    random.seed(args.seed)
    rows, skipped = labels.load(args.data, args.bart, args.mini)
    print(f"labelled sentences: {len(rows)} (left out: {skipped})")
    names = faithfulness._model().features
    features, sentences = labelled_matrix(rows)
    X, y = as_array(features, names), np.array([float(r.wrong) for r in rows])
    groups = np.array([r.id for r in rows])
    if args.synthetic:
        synth, synth_y, _ = synthetic_matrix(args.data, args.synthetic, args.seed)
        synth_X = as_array(synth, names)
    else:
        synth_X, synth_y = np.zeros((0, len(names))), np.zeros(0)
    risk, shown = cross_validate(X, y, groups, synth_X, synth_y, args.penalty, args.synthetic_share,
                                 seed=args.seed)
    baseline = np.array([plain_new_words(r.dialogue, r.sentence) for r in rows])
    report = {"held_out": summarise(rows, risk, shown, baseline, labels.TYPES),
              "by_system": {}, "kinds": kind_precision(rows, sentences, shown)}
    for system in sorted({r.system for r in rows}):
        pick = np.array([r.system == system for r in rows])
        report["by_system"][system] = summarise([r for r, p in zip(rows, pick) if p], risk[pick], shown[pick],
                                                baseline[pick], ())
    coef, intercept = fit_both(X, y, synth_X, synth_y, args.penalty, args.synthetic_share)
    threshold = choose_threshold(risk, y == 1)
    kinds = shown_kinds(report["kinds"])
    model = {"features": list(names), "coef": [round(float(c), 4) for c in coef],
             "intercept": round(float(intercept), 4), "threshold": round(threshold, 4), "kinds": kinds}
    report["model"] = model
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.write:
        _write_atomic(faithfulness.MODEL_PATH, json.dumps(model, indent=1) + "\n")
    return 0


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


if __name__ == "__main__":
    raise SystemExit(main())
