"""The faithfulness check: spans the dialogue does not support, the support score, its CLI, and
where it shows (evaluate, the Compare card, the votes). Every dialogue and summary here is written
for these tests (none comes from DialogSum)."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path

import pytest

from helpers import write_registry, write_release_folder
from summarizer import faithfulness, studio as core
from summarizer.cli import main
from summarizer.registry import Registry
from summarizer.votes import ShownCard, VoteStore, leaderboard

ROOT = Path(__file__).resolve().parent.parent

COOKIES = ("Amanda: I baked cookies this morning. Do you want some?\n"
           "Jerry: Sure! I'll pay you 5 dollars for a box.\n"
           "Amanda: No need to pay, they're free. Come by at 3:30.\n"
           "Jerry: Great, I'll bring my sister Kate.")
MOVING = ("#Person1#: I'm moving to Boston next month, so I need to sell my piano.\n"
          "#Person2#: How much do you want for it?\n"
          "#Person1#: Two hundred dollars. It's old but it still sounds good.\n"
          "#Person2#: I'll take it. Can I pick it up on Saturday?\n"
          "#Person1#: Saturday works. Come after 10 am.")
DENTIST = ("Priya: I have a toothache, can you book me a dentist appointment?\n"
           "Marco: I called the clinic. They have a slot on Thursday at 4:15.\n"
           "Priya: Thursday is fine. I don't want to wait until next week.\n"
           "Marco: OK, I booked it and I'll drive you there.")
PARTY = ("#Person1#: Are you coming to Lisa's birthday party on Friday?\n"
         "#Person2#: I can't. I have to work late on Friday.\n"
         "#Person1#: That's a pity. She will be sad.\n"
         "#Person2#: I'll call her and send her a present.")

# (dialogue, intact summary, corrupted summaries): swaps of who did what, changed particulars,
# negations and invented entities, each a sentence a model could write.
PAIRS = [
    (COOKIES, "Amanda baked cookies and offers Jerry some. Jerry will come at 3:30 with his sister Kate.", [
        "Jerry baked cookies and offers Amanda some. Jerry will come at 3:30 with his sister Kate.",
        "Amanda baked cookies and offers Jerry some. Jerry will come at 5:30 with his sister Kate.",
        "Amanda baked cookies and offers Jerry some. Jerry will come at 3:30 with his brother Tom.",
        "Amanda baked a cake and offers Jerry some. Jerry will come at 3:30 with his sister Kate."]),
    (MOVING, "#Person1# is moving to Boston and sells the piano to #Person2# for two hundred dollars. "
             "#Person2# will pick it up on Saturday.", [
        "#Person2# is moving to Boston and sells the piano to #Person1# for two hundred dollars. "
        "#Person2# will pick it up on Saturday.",
        "#Person1# is moving to Boston and sells the piano to #Person2# for three hundred dollars. "
        "#Person2# will pick it up on Saturday.",
        "#Person1# is moving to Chicago and sells the piano to #Person2# for two hundred dollars. "
        "#Person2# will pick it up on Saturday.",
        "#Person1# is moving to Boston and sells the piano to #Person2# for two hundred dollars. "
        "#Person2# will pick it up on Sunday."]),
    (DENTIST, "Priya has a toothache. Marco booked a dentist appointment on Thursday at 4:15 and will drive her.", [
        "Marco has a toothache. Priya booked a dentist appointment on Thursday at 4:15 and will drive him.",
        "Priya has a toothache. Marco booked a dentist appointment on Tuesday at 4:15 and will drive her.",
        "Priya has a toothache. Marco booked a dentist appointment on Thursday at 6:45 and will drive her.",
        "Priya has a toothache. Marco booked a doctor appointment with Dr Lopez on Thursday at 4:15."]),
    (PARTY, "#Person2# can't come to Lisa's party on Friday because of work and will call her.", [
        "#Person1# can't come to Lisa's party on Friday because of work and will call her.",
        "#Person2# can't come to Emma's party on Friday because of work and will call her.",
        "#Person2# can't come to Lisa's party on Monday because of work and will call her."]),
]


def run_cli(tmp_path, rows) -> list[dict]:
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    target = tmp_path / "out.jsonl"
    assert main(["faithfulness", "--input", str(source), "--output", str(target)]) == 0
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]


def particulars(text: str) -> set[str]:
    """Names, numbers, times and days a summary writes (speaker tags left out)."""
    return set(re.findall(r"\b[A-Z][a-z]+\b|\b\d+(?::\d+)?", re.sub(r"#\w+#", "", text)))


def test_cli_ranks_every_corrupted_summary_below_its_intact_one(tmp_path):
    rows = []
    for number, (dialogue, intact, corrupted) in enumerate(PAIRS):
        rows.append({"id": f"{number}-intact", "dialogue": dialogue, "summary": intact})
        rows += [{"id": f"{number}-corrupted-{k}", "dialogue": dialogue, "summary": s} for k, s in enumerate(corrupted)]
    out = run_cli(tmp_path, rows)
    assert [r["id"] for r in out] == [r["id"] for r in rows]  # one row out per row in, in order
    by_id = {r["id"]: r for r in out}
    marked = total = 0
    for number, (_, intact_text, corrupted) in enumerate(PAIRS):
        intact = by_id[f"{number}-intact"]
        assert intact["support"] > 0.9, intact
        for k, text in enumerate(corrupted):
            bad = by_id[f"{number}-corrupted-{k}"]
            assert bad["support"] < intact["support"], (bad, intact)
            marked, total = marked + bool(bad["unsupported"]), total + 1
            if particulars(text) - particulars(intact_text) - {"Marco", "Priya", "Jerry", "Amanda"}:
                assert bad["unsupported"], bad
    # Underlines are calibrated on real errors (docs/faithfulness.md): a sentence is underlined only
    # above the risk at which 1 correct sentence in 20 would be. A lone invented common word ("a
    # cake"), a slight lean of the speakers' words ("Marco has a toothache") or a swap they do not
    # separate ("#Person1# can't come" for #Person2#) stays below it, with lower support; an
    # invented name, number, time or day does not (asserted above).
    assert marked >= 0.75 * total, (marked, total)
    for row in out:
        assert 0.0 <= row["support"] <= 1.0
        assert {"text", "support", "unsupported"} <= set(row["sentences"][0])


def test_output_goes_to_stdout_without_output(tmp_path, capsys):
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps({"dialogue": COOKIES, "summary": "Amanda baked cookies."}) + "\n\n", encoding="utf-8")
    assert main(["faithfulness", "--input", str(source)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["id"] == 0


def test_speaker_swap_marks_the_subject():
    summary = "Jerry baked cookies and offers Amanda some."
    report = faithfulness.check(COOKIES, summary)
    speakers = [s for s in report.unsupported if s.kind == "speaker"]
    assert [(s.text, s.start) for s in speakers] == [("Jerry", 0)]
    assert faithfulness.check(COOKIES, "Amanda baked cookies and offers Jerry some.").unsupported == []
    # DialogSum's tags: the one who is selling is #Person1#.
    swapped = faithfulness.check(MOVING, "#Person2# needs to sell the piano before moving to Boston.")
    assert [s.kind for s in swapped.unsupported] == ["speaker"] and swapped.unsupported[0].text == "#Person2#"
    assert faithfulness.check(MOVING, "#Person1# needs to sell the piano before moving to Boston.").support == 1.0
    # A tag the dialogue does not have is a speaker it does not have.
    assert faithfulness.check(MOVING, "#Person3# buys the piano.").unsupported[0].kind == "speaker"


def test_numbers_times_amounts_and_dates():
    ok = faithfulness.check(COOKIES, "Jerry offers $5 for five cookies... Amanda says come at 3:30.")
    assert not ok.has_unsupported(*faithfulness.PARTICULARS), ok.to_dict()
    assert faithfulness.check(MOVING, "#Person1# sells the piano for 200 dollars.").support == 1.0
    bad = faithfulness.check(MOVING, "#Person1# sells the piano for $350 in 2019 and leaves at 11:45 on Sunday.")
    assert [(s.text, s.kind) for s in bad.unsupported if s.kind in faithfulness.PARTICULARS] == [
        ("$350", "amount"), ("2019", "date"), ("11:45", "time"), ("Sunday", "date")]
    assert faithfulness.check(DENTIST, "Marco booked a slot for 7 people.").unsupported[0].kind == "number"


def test_negation_that_the_dialogue_does_not_have():
    report = faithfulness.check(PARTY, "#Person2# will not call Lisa.")
    assert [s.kind for s in report.unsupported] == ["negation"]
    assert faithfulness.check(PARTY, "#Person2# will call Lisa.").support == 1.0


def test_span_offsets_point_into_the_summary():
    summary = "  Jerry baked a cake!  Amanda will pay $9 on Friday.\nBob is there.  "
    report = faithfulness.check(COOKIES, summary)
    assert report.unsupported
    for span in report.unsupported:
        assert summary[span.start:span.end] == span.text
    for sentence in report.sentences:
        assert summary[sentence.start:sentence.end] == sentence.text and sentence.text == sentence.text.strip()
        for span in sentence.unsupported:
            assert sentence.start <= span.start < span.end <= sentence.end
    assert {s.text for s in report.unsupported} >= {"cake", "$9", "Friday", "Bob"}
    assert faithfulness.check(COOKIES, "").support == 1.0 and faithfulness.check("", "Hello there.").support < 1


@pytest.mark.parametrize("content, message", [
    ('{"dialogue": "a", "summary": "b"}\n{not json\n', "rows.jsonl:2: not JSON"),
    ('{"dialogue": "a"}\n', "rows.jsonl:1: 'summary' is missing"),
    ('{"dialogue": 3, "summary": "b"}\n', "rows.jsonl:1: 'dialogue' is not a string (int)"),
    ('[1, 2]\n', "rows.jsonl:1: expected a JSON object"),
    ('\n\n', "no rows"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, content, message):
    source = tmp_path / "rows.jsonl"
    if isinstance(content, bytes):
        source.write_bytes(content)
    else:
        source.write_text(content, encoding="utf-8")
    target = tmp_path / "out.jsonl"
    assert main(["faithfulness", "--input", str(source), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not target.exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_evaluate_reports_support_per_model(tmp_path, capsys, tiny_models):
    registry = write_registry(tmp_path / "models.toml", tiny_models)
    data = write_release_folder(tmp_path / "data")
    output = tmp_path / "results.json"
    assert main(["evaluate", "--models", "original,longest-3", "--split", "test", "--data", str(data),
                 "--registry", str(registry), "--max-new-tokens", "8", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "support" in printed.splitlines()[0] and "unsupported_particulars" in printed.splitlines()[0]
    results = json.loads(output.read_text())
    rows = {r["model"]: r for r in results["aggregate"]}
    # longest-3 copies turns of the dialogue: all of it is there. The tiny model writes noise.
    assert rows["longest-3"]["support"] > 0.95 and rows["longest-3"]["unsupported_particulars"] == 0
    assert 0.0 <= rows["original"]["support"] < rows["longest-3"]["support"]
    assert all("support" in r and isinstance(r["unsupported"], list) for r in results["rows"])
    assert main(["evaluate", "--models", "longest-3", "--split", "test", "--data", str(data),
                 "--registry", str(registry), "--output", str(tmp_path / "results.csv")]) == 0
    with (tmp_path / "results.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert table and all(0.95 < float(r["support"]) <= 1.0 for r in table)


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("faithfulness-studio")
    registry = write_registry(root / "models.toml", tiny_models)
    return core.Studio(Registry.from_file(registry), data_source=str(write_release_folder(root / "data")),
                       results_path=root / "no-results.json", output_dir=root / "outputs",
                       votes=VoteStore(root / "votes.sqlite3", per_hour=1000))


NOISE_DIALOGUE = ("#Person1#: Hello, I am Anna. I would like 3 books, please.\n"
                  "#Person2#: Of course. Shall I bring them to the library?\n"
                  "#Person1#: Yes, the library is fine. Thank you very much.")


def test_card_marks_unsupported_spans_apart_from_shared_words(studio):
    view = studio.comparisons.compare_all(NOISE_DIALOGUE, "Anna orders 3 books.", ["original", "longest-3"],
                              decoding=core.decoding_settings(max_new_tokens=12))
    noise, extract = view.cards
    assert noise.faithfulness is not None and noise.faithfulness.unsupported, noise.text
    html = core.render_cards(view)
    first = noise.faithfulness.unsupported[0]
    assert f'class="unsupported" data-kind="{first.kind}" title="not in the dialogue ({first.kind})"' in html
    assert "support <b>" in html and "<mark>Anna</mark>" in html  # ROUGE's highlight stays plain <mark>
    assert extract.faithfulness.support > 0.95 and not extract.faithfulness.unsupported
    table = core.rouge_table(view)
    assert list(table["support"]) == [round(noise.faithfulness.support, 3), round(extract.faithfulness.support, 3)]
    data = view.to_dict()["models"]
    assert data[0]["support"] == round(noise.faithfulness.support, 4) and data[0]["unsupported"]
    assert core.compare_figure(view) is not None


def test_blind_card_shows_no_marks_until_the_vote(studio):
    view = studio.comparisons.compare_all(NOISE_DIALOGUE, "", ["original", "longest-3"], blind=True,
                              decoding=core.decoding_settings(max_new_tokens=12))
    assert 'class="unsupported"' not in core.render_cards(view) and "support" not in core.render_cards(view)
    assert "support" not in json.dumps(view.to_dict())
    studio.voting.vote(view.comparison_id, "A")
    board = studio.voting.leaderboard()
    assert board.agreement["support"]["votes"] >= 1
    assert all(s.mean_support is not None for s in board.standings)
    assert "Support vs people" in core.leaderboard_note(board)


OLD_CARDS = """CREATE TABLE cards (comparison_id TEXT NOT NULL, label TEXT NOT NULL, position INTEGER NOT NULL,
    model TEXT NOT NULL, kind TEXT NOT NULL, ok INTEGER NOT NULL, summary TEXT,
    rouge1 REAL, rouge2 REAL, rougeL REAL, rougeLsum REAL, PRIMARY KEY (comparison_id, label))"""


def test_an_older_votes_database_gets_the_support_column(tmp_path):
    path = tmp_path / "votes.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(OLD_CARDS)
    store = VoteStore(path, per_hour=1000)
    with sqlite3.connect(path) as db:
        assert "support" in {row[1] for row in db.execute("PRAGMA table_info(cards)")}
    cards = [ShownCard("A", "m1", "seq2seq", True, "Amanda baked cookies.", None, 0.9),
             ShownCard("B", "m2", "seq2seq", True, "Tom baked a cake.", None, 0.2)]
    comparison = store.record_comparison(cards, blind=False, shot_mode="zero-shot", settings={},
                                         dialogue_sha256="0" * 64, has_reference=False)
    store.cast_vote(comparison, "B")
    VoteStore(path, per_hour=1000)  # opening it again changes nothing
    ballot, = store.ballots()
    assert [c.support for c in ballot.comparison.cards] == [0.9, 0.2]
    agreement = leaderboard.compute(store.ballots()).agreement["support"]
    assert agreement == {"votes": 1, "agree": 0, "rate": 0.0, "chance": 0.5}


# The calibrated checker: a sentence model fitted on real errors (summarizer/faithfulness_fit.py,
# assets/faithfulness), shipped as coefficients in a small JSON.

RELEASE = ROOT.parent / "shared" / "data" / "dialogsum"
LAID_OFF = ("Amy: Did you hear? Tom lost his job at the bakery.\n"
            "Ben: Oh no. When did that happen?\n"
            "Amy: On Monday. He is looking for work at the market now.\n"
            "Ben: I'll ask my uncle, he runs a shop there.")


def test_the_model_file_is_small_non_negative_and_names_what_the_check_computes():
    data = json.loads(faithfulness.MODEL_PATH.read_text(encoding="utf-8"))
    assert faithfulness.MODEL_PATH.stat().st_size < 10_000
    assert len(data["features"]) == len(data["coef"]) and all(c >= 0 for c in data["coef"])
    assert 0 < data["threshold"] < 1 and set(data["kinds"]) <= set(faithfulness.KINDS)
    computed = faithfulness.check(LAID_OFF, "Tom lost his job. Ben will ask his uncle.").sentences[0].features
    assert set(data["features"]) <= set(computed), set(data["features"]) - set(computed)


@pytest.mark.parametrize("summary", [
    "Tom lost his job at the bakery on Monday. Ben will ask his uncle, who runs a shop at the market.",
    "Tom lost his job on Friday. Ben will ask his aunt, who runs a restaurant in Paris.",
    "Ben lost his job at the bakery. Amy tells Amy about it.",
    "#Person1#'s #Person2#'s a lot of time.",
    "Amy and Ben talk about Tom. They do not know what to do.",
])
def test_underlines_only_sentences_over_the_threshold(summary):
    threshold = faithfulness._model().threshold
    report = faithfulness.check(LAID_OFF, summary)
    for sentence in report.sentences:
        assert bool(sentence.unsupported) == (sentence.risk >= threshold), sentence
        # Support falls as risk rises, and is 1 where the check finds no evidence at all.
        if not any(sentence.features.values()):
            assert sentence.support == 1.0
        for span in sentence.unsupported:
            assert span.kind in faithfulness.KINDS and summary[span.start:span.end] == span.text
    ordered = sorted(report.sentences, key=lambda s: s.risk)
    assert [s.support for s in ordered] == sorted((s.support for s in ordered), reverse=True)


def test_invented_particulars_are_underlined_and_rank_below_the_faithful_summary():
    good = faithfulness.check(LAID_OFF, "Tom lost his job at the bakery on Monday. Ben will ask his uncle.")
    bad = faithfulness.check(LAID_OFF, "Tom lost his job on Friday. Ben will ask his aunt in Paris.")
    assert good.support == 1.0 and not good.unsupported, good.to_dict()
    assert {s.text for s in bad.unsupported} >= {"Friday", "Paris"} and bad.support < 0.5


def test_names_the_dialogue_gives_its_speakers_and_a_speaker_telling_themselves():
    dialogue = ("#Person1#: Steven, I need your help with the report.\n"
                "#Person2#: Sure. This is the third time this week, Mark.\n"
                "#Person1#: I know. I'll buy you lunch.")
    index = faithfulness._Dialogue(dialogue)
    assert index.aliases == {"Steven": "#Person2#", "Mark": "#Person1#"}
    wrong = faithfulness.check(dialogue, "Mark tells #Person1# he needs help with the report.").sentences[0]
    right = faithfulness.check(dialogue, "Mark asks Steven for help with the report.").sentences[0]
    assert wrong.features["self_reference"] == 1.0 and right.features["self_reference"] == 0.0
    assert wrong.risk > right.risk and wrong.support < right.support


def test_garbled_sentences_weigh_as_evidence():
    plain = faithfulness.check(MOVING, "#Person1# sells the piano to #Person2#.").sentences[0]
    chained = faithfulness.check(MOVING, "#Person1#'s #Person2#'s the piano to sell.").sentences[0]
    repeated = faithfulness.check(MOVING, "#Person1# sells the piano of the piano of the piano.").sentences[0]
    assert chained.features["chain"] == 1.0 and repeated.features["repeat"] >= 2
    assert chained.risk > plain.risk and repeated.risk > plain.risk


def test_a_parsed_dialogue_gives_the_same_report():
    from summarizer.speakers import parse
    summary = "Tom lost his job on Friday. Ben will ask his uncle."
    assert faithfulness.check(LAID_OFF, summary, parsed=parse(LAID_OFF)).to_dict() == \
        faithfulness.check(LAID_OFF, summary).to_dict()


def test_sentences_keep_titles_initials_and_decimals():
    text = "Ms. Dawson met Mr. Li in L.A. and paid $3.50 for No. 7.  Then she left!\nOK"
    assert [text[a:b] for a, b in faithfulness.sentence_spans(text)] == [
        "Ms. Dawson met Mr. Li in L.A. and paid $3.50 for No. 7.", "Then she left!", "OK"]


def test_the_labelled_set_holds_ids_offsets_and_labels_only():
    from summarizer import faithfulness_labels as labels
    rows = labels.read_labels()
    assert len(rows) >= 400
    systems = {"bart-large", "mini-instruct", "mini-lora", "mini-prompt"}
    for row in rows:
        assert set(row) == {"id", "system", "start", "end", "label", "type", "summary_sha256"}, row
        assert re.fullmatch(r"test_\d+", row["id"]) and row["system"] in systems
        assert 0 <= row["start"] < row["end"] and re.fullmatch(r"[0-9a-f]{64}", row["summary_sha256"])
        assert (row["label"], row["type"] in labels.TYPES) in {("correct", False), ("wrong", True)}
    keys = [(r["id"], r["system"], r["start"]) for r in rows]
    assert len(keys) == len(set(keys))
    wrong = sum(r["label"] == "wrong" for r in rows)
    assert 0.2 * len(rows) < wrong < 0.8 * len(rows)


@pytest.mark.slow
@pytest.mark.skipif(not (RELEASE / "dialogsum.test.jsonl").is_file(), reason=f"no DialogSum release at {RELEASE}")
def test_the_shipped_mini_models_still_write_the_labelled_summaries(tmp_path):
    """Greedy decoding of the shipped models reproduces the labelled summaries (same hash), and the
    labelled offsets are the checker's sentences."""
    from summarizer import faithfulness_fit, faithfulness_labels as labels
    out = tmp_path / "mini.csv"
    assert main(["evaluate", "--models", "mini-instruct,mini-lora,mini-prompt", "--registry",
                 str(ROOT / "assets" / "mini" / "models.toml"), "--split", "test", "--limit", "16",
                 "--data", str(RELEASE), "--output", str(out)]) == 0
    rows, skipped = labels.load(RELEASE, bart=None, mini=out)
    expected = [r for r in labels.read_labels() if r["system"] != "bart-large" and int(r["id"][5:]) < 16]
    assert skipped["drifted"] == 0 and len(rows) == len(expected) > 50
    faithfulness_fit.labelled_matrix(rows)  # raises if an offset is not a checked sentence


@pytest.mark.slow
@pytest.mark.skipif(not all(p.is_file() for p in (RELEASE / "dialogsum.test.jsonl",
                                                    Path.home() / ".cache" / "dialogsum-studio" / "mini-test160.csv")),
                    reason="needs the DialogSum release and the mini models' summaries (assets/faithfulness/README.md)")
def test_held_out_on_real_errors_beats_the_new_word_baseline():
    """The acceptance figures, out-of-fold (no synthetic data, to stay quick): AUC at least 0.05
    over the plain new-word share, underline precision at least 0.6 at recall at least 0.4."""
    import numpy as np
    from summarizer import faithfulness_fit as fit, faithfulness_labels as labels
    rows, _ = labels.load(RELEASE)
    names = faithfulness._model().features
    features, _ = fit.labelled_matrix(rows)
    X, y = fit.as_array(features, names), np.array([float(r.wrong) for r in rows])
    empty = np.zeros((0, len(names)))
    risk, shown = fit.cross_validate(X, y, np.array([r.id for r in rows]), empty, np.zeros(0), 1.0)
    baseline = np.array([fit.plain_new_words(r.dialogue, r.sentence) for r in rows])
    report = fit.summarise(rows, risk, shown, baseline, labels.TYPES)["any"]
    assert report["auc"] >= report["baseline_auc"] + 0.05, report
    assert report["precision"] >= 0.6 and report["recall"] >= 0.4, report
