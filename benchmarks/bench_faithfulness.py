"""How well `summarizer.faithfulness.check` tells corrupted summary sentences from intact ones.

The labelled set is built from DialogSum references (dev split by default; nothing from it is
written anywhere) by corrupting one sentence the usual way (as FactCC and the dialogue
factuality studies do), next to the intact sentence:

- speaker: swap the two speakers a sentence names (or, naming one, put another speaker of the
  dialogue in their place): who-did-what;
- number: change a number or a time ("3:30" -> "5:30", "two" -> "four", "20" -> "23");
- negation: negate the first auxiliary ("will" -> "will not"), drop an existing negation, or
  negate the verb after a speaker ("#Person1# wants" -> "#Person1# doesn't want");
- entity: put a name, or failing one a content word, from another dialogue's summary in place of
  one of the sentence's own.

A corruption applies only where the sentence has what it changes; a sentence it cannot change is
left out of that type. Each score is turned into an AUC (the chance that a random corrupted item
scores as less supported than a random intact one; 0.5 is chance), per corruption type and over
all, at two levels: sentence (the corrupted sentence vs the intact one) and whole summary (the
summary with one corrupted sentence vs the intact summary). Next to the check: the baseline
"share of summary words not in the dialogue". Also what the card shows: the share of items of
each type the check underlines (recall), the share of intact items it underlines (false alarms),
and the precision of its underlines among these items and the intact ones. Fixed seed; prints
the table. The check's sentence model is fitted on the *train* split (summarizer.faithfulness_fit),
never on these dev items.

    python benchmarks/bench_faithfulness.py [--split dev] [--limit N] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from summarizer import faithfulness  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dialogsum"
TYPES = ("speaker", "number", "negation", "entity")
_WORD = re.compile(r"#\w+#|\w+(?:'\w+)?")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_TAG = re.compile(r"#Person\d+#")
_NUMBER_WORDS = "one two three four five six seven eight nine ten eleven twelve twenty thirty fifty hundred".split()
_AUXILIARIES = ("will", "can", "is", "are", "was", "were", "would", "could", "should", "has", "have",
                "had", "does", "did", "must")
_COMMON = frozenset("""the a an and or but of to in on at for with from by about as into that this these
    those it its he she they them his her their him is are was were be been will would can could has
    have had does did do not no so then there here what which who when where why how all some any
    also very just because after before while than tells asks talks says wants thinks agrees""".split())


def load(split: str, limit: int | None, data: Path) -> list[dict]:
    name = {"dev": "dev", "validation": "dev", "test": "test", "train": "train"}[split]
    path = data / f"dialogsum.{name}.jsonl"
    if not path.exists():
        sys.exit(f"no DialogSum data at {path} (set --data)")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            summary = row.get("summary") or row.get("summary1")
            rows.append({"dialogue": row["dialogue"], "summary": summary})
            if limit and len(rows) >= limit:
                break
    return rows


def speakers_of(dialogue: str) -> list[str]:
    found = []
    for line in dialogue.splitlines():
        match = re.match(r"\s*(#Person\d+#)\s*:", line)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def corrupt_speaker(sentence: str, dialogue: str, rng: random.Random) -> str | None:
    named = list(dict.fromkeys(_TAG.findall(sentence)))
    if len(named) >= 2:
        first, second = named[0], named[1]
        return _TAG.sub(lambda m: second if m.group(0) == first else first if m.group(0) == second
                        else m.group(0), sentence)
    others = [s for s in speakers_of(dialogue) if s not in named]
    if len(named) == 1 and others:
        return sentence.replace(named[0], rng.choice(others))
    return None


def corrupt_number(sentence: str, dialogue: str, rng: random.Random) -> str | None:
    spots = [m for m in re.finditer(r"\b\d+(?::\d{2})?\b|\b(?:%s)\b" % "|".join(_NUMBER_WORDS), sentence)]
    if not spots:
        return None
    spot = rng.choice(spots)
    text = spot.group(0)
    if ":" in text:
        hours, minutes = text.split(":")
        new = f"{(int(hours) + rng.choice([1, 2, 3, -1, -2])) % 12 or 12}:{minutes}"
    elif text.isdigit():
        value = int(text)
        new = str(max(0, value + rng.choice([1, 2, 3, 5, 10, -1, -2])) if value < 100
                  else value + rng.choice([1, 2, 5, 10, -5]) * 10 ** (len(text) - 2))
    else:
        new = rng.choice([w for w in _NUMBER_WORDS if w != text])
    return None if new == text else sentence[:spot.start()] + new + sentence[spot.end():]


def corrupt_negation(sentence: str, dialogue: str, rng: random.Random) -> str | None:
    negated = re.search(r"\b(not|never)\s|n't\b", sentence)
    if negated:  # drop the negation
        text = negated.group(0)
        if text == "n't":
            start = negated.start()
            stem = sentence[:start]
            stem = {"wo": "will", "ca": "can"}.get(stem.split()[-1].lower() if stem.split() else "", None)
            if stem:
                head = sentence[:start].rsplit(" ", 1)[0] if " " in sentence[:start] else ""
                return (head + " " if head else "") + stem + sentence[negated.end():]
            return sentence[:start] + sentence[negated.end():]
        return sentence[:negated.start()] + sentence[negated.end():]
    aux = re.search(r"\b(%s)\b" % "|".join(_AUXILIARIES), sentence)
    if aux:
        return sentence[:aux.end()] + " not" + sentence[aux.end():]
    verb = re.search(r"(#Person\d+#|\b[A-Z][a-z]+) ([a-z]{3,}?)(es|s)\b", sentence)
    if verb and verb.group(2) + verb.group(3) not in _COMMON - {"tells", "asks", "talks", "says", "wants", "thinks", "agrees"}:
        base = verb.group(2) + ("e" if verb.group(3) == "es" and not verb.group(2).endswith(("sh", "ch", "ss", "x", "o")) else "")
        return sentence[:verb.end(1)] + " doesn't " + base + sentence[verb.end():]
    return None


def _names(text: str) -> list[str]:
    """Capitalised words that do not open a sentence and are no speaker tag."""
    found = []
    for sentence in _SENTENCE.findall(text):
        words = _WORD.findall(sentence)
        found += [w for w in words[1:] if w[:1].isupper() and not w.startswith("#") and w.lower() not in _COMMON]
    return found


def corrupt_entity(sentence: str, dialogue: str, rng: random.Random, donors: list[dict]) -> str | None:
    dialogue_words = {w.lower() for w in _WORD.findall(dialogue)}
    for _ in range(20):
        donor = rng.choice(donors)
        if donor["dialogue"] is dialogue:
            continue
        own_names = [n for n in _names(sentence)]
        if own_names:
            pool = [n for n in _names(donor["summary"]) if n.lower() not in dialogue_words]
            target = rng.choice(own_names)
        else:
            pool = [w for w in _WORD.findall(donor["summary"]) if len(w) > 3 and not w.startswith("#")
                    and w.lower() not in _COMMON and w.lower() not in dialogue_words and w.islower()]
            targets = [w for w in _WORD.findall(sentence) if len(w) > 3 and w.islower() and w not in _COMMON]
            if not targets:
                return None
            target = rng.choice(targets)
        if pool:
            replacement = rng.choice(pool)
            return re.sub(r"\b%s\b" % re.escape(target), replacement, sentence, count=1)
    return None


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """P(a corrupted item scores higher than an intact one), ties counting half (Mann-Whitney)."""
    if not positives or not negatives:
        return None
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2  # ranks i+1..j
        rank_sum += mean_rank * sum(label for _, label in ranked[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def baseline(dialogue: str, summary: str) -> float:
    """Share of the summary's words not in the dialogue (higher = less supported)."""
    words = [w.lower() for w in _WORD.findall(summary)]
    present = {w.lower() for w in _WORD.findall(dialogue)}
    return sum(w not in present for w in words) / len(words) if words else 0.0


def unfaithfulness(dialogue: str, summary: str) -> tuple[float, bool]:
    """1 - support, and whether the check underlines anything."""
    report = faithfulness.check(dialogue, summary)
    return 1.0 - report.support, bool(report.unsupported)


def build(rows: list[dict], seed: int):
    """(type, level, label, dialogue, text) items: each corrupted sentence/summary and the intact ones."""
    rng = random.Random(seed)
    items = []
    corrupters = {"speaker": corrupt_speaker, "number": corrupt_number, "negation": corrupt_negation,
                  "entity": lambda s, d, r: corrupt_entity(s, d, r, rows)}
    for row in rows:
        sentences = [s for s in _SENTENCE.findall(row["summary"]) if s.strip()]
        for position, sentence in enumerate(sentences):
            items.append(("intact", "sentence", 0, row["dialogue"], sentence.strip()))
        items.append(("intact", "summary", 0, row["dialogue"], row["summary"]))
        for kind, corrupter in corrupters.items():
            order = list(range(len(sentences)))
            rng.shuffle(order)
            for position in order:
                changed = corrupter(sentences[position], row["dialogue"], rng)
                if changed and changed.strip() != sentences[position].strip():
                    items.append((kind, "sentence", 1, row["dialogue"], changed.strip()))
                    whole = "".join(changed if i == position else s for i, s in enumerate(sentences))
                    items.append((kind, "summary", 1, row["dialogue"], whole))
                    break
    return items


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=("dev", "validation", "test", "train"))
    parser.add_argument("--limit", type=int, help="only the first N dialogues")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    rows = load(args.split, args.limit, args.data)
    items = build(rows, args.seed)
    started = time.perf_counter()
    scored = [(kind, level, label, *unfaithfulness(d, t), baseline(d, t)) for kind, level, label, d, t in items]
    elapsed = time.perf_counter() - started
    print(f"DialogSum {args.split}: {len(rows)} reference summaries, {len(items)} items, seed {args.seed}; "
          f"check: {elapsed / len(items) * 1000:.2f} ms per item")
    print(f"{'corruption':10s}  {'level':8s}  {'n':>5s}  {'check AUC':>9s}  {'baseline AUC':>12s}  "
          f"{'underlined':>10s}  {'precision':>9s}")
    for level in ("sentence", "summary"):
        intact = [s for s in scored if s[1] == level and s[2] == 0]
        false_alarms = sum(s[4] for s in intact)
        for kind in (*TYPES, "all"):
            corrupted = [s for s in scored if s[1] == level and s[2] == 1 and (kind == "all" or s[0] == kind)]
            ours = auc([s[3] for s in corrupted], [s[3] for s in intact])
            base = auc([s[5] for s in corrupted], [s[5] for s in intact])
            if ours is None:
                continue
            # Underlined: the share of these corrupted items the check marks (recall); precision:
            # of all it marks among them and the intact items, the share that is corrupted.
            hits = sum(s[4] for s in corrupted)
            precision = hits / (hits + false_alarms) if hits + false_alarms else float("nan")
            print(f"{kind:10s}  {level:8s}  {len(corrupted):5d}  {ours:9.3f}  {base:12.3f}  "
                  f"{hits / len(corrupted):10.3f}  {precision:9.3f}")
        print(f"{'intact':10s}  {level:8s}  {len(intact):5d}  {'':9s}  {'':12s}  {false_alarms / len(intact):10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
