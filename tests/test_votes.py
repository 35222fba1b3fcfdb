"""Votes without a server: blind comparisons, the vote store (SQLite), the leaderboard's math, the
`votes` CLI. Everything runs on real components: the Studio on conftest's tiny models, a real
SQLite file in tmp_path, choix for the fit."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import choix
import pytest

from helpers import write_registry, write_release_folder
from summarizer import studio as core
from summarizer.cli import main
from summarizer.errors import UserError
from summarizer.registry import Registry
from summarizer.votes import ShownCard, VoteRefused, VoteStore, default_path, dialogue_digest
from summarizer.votes import leaderboard
from summarizer.votes.store import DEFAULT_VOTES_PER_HOUR, MIGRATIONS, SCHEMA_VERSION, votes_per_hour

ROOT = Path(__file__).resolve().parent.parent
THREE = ["original", "peft-lora", "longest-3"]
DIALOGUE = ("#Person1#: Hello, I am Anna. I would like 3 books, please.\n"
            "#Person2#: Of course. Shall I bring them to the library?\n"
            "#Person1#: Yes, the library is fine. Thank you very much.")
REFERENCE = "Anna orders 3 books to the library."


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("votes-studio")
    registry = write_registry(root / "models.toml", tiny_models)
    with registry.open("a", encoding="utf-8") as handle:
        handle.write('\n[models.broken]\nkind = "seq2seq"\npath = "/nonexistent/dialogsum-model"\n'
                     '\n[models.first-copy]\nkind = "extractive"\n\n[models.second-copy]\nkind = "extractive"\n')
    return core.Studio(Registry.from_file(registry), data_source=str(write_release_folder(root / "data")),
                       output_dir=root / "outputs", votes=VoteStore(root / "votes.sqlite3", per_hour=1000))


def blind_view(studio, models=THREE, reference=REFERENCE, **kwargs):
    return studio.comparisons.compare_all(DIALOGUE, reference, models, decoding=core.decoding_settings(max_new_tokens=8),
                              blind=True, **kwargs)


def table_rows(path: Path) -> dict[str, list]:
    with sqlite3.connect(path) as db:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("comparisons", "cards", "votes")}


# ---------------------------------------------------------------------------------------------
# Blind comparisons and the reveal


def test_blind_comparison_hides_every_name_until_the_vote(studio):
    view = blind_view(studio, models=[*THREE, "broken"])
    assert view.done and view.comparison_id and not view.revealed
    assert [c.label for c in view.cards] == ["A", "B", "C", "D"]
    html, notes, data = core.render_cards(view), core.render_notes(view), json.dumps(view.to_dict())
    for shown in (html, notes, data):
        for name in [*THREE, "broken", "seq2seq", "lora", "extractive", "nonexistent"]:
            assert name not in shown, (name, shown[:500])
    assert "Prompt sent" not in html and "ROUGE-1" not in html and "latency" not in html and "<mark>" not in html
    assert "data-model" not in html and html.count('class="ds-card"') == 4
    assert "could not run (the reason is shown after the vote)" in html
    assert core.rouge_table(view).empty and core.compare_figure(view) is None
    assert core.BLIND_NOTE in view.notes
    assert view.to_dict()["vote_choices"] == [c.label for c in view.cards if c.state == "done"] + ["tie", "bad"]

    pick = next(c for c in view.cards if c.state == "done")
    view.ballot = studio.voting.vote(view.comparison_id, pick.label, "10.0.0.1")
    html = core.render_cards(view)
    assert view.revealed and view.ballot.winner == pick.model
    for card in view.cards:
        assert f'data-model="{card.model}"' in html
    assert f'data-card="{pick.label}" data-model="{pick.model}" data-picked="true"' in html
    assert "Prompt sent" in html and "ROUGE-1" in html and "/nonexistent/dialogsum-model" in html
    assert list(core.rouge_table(view)["model"]) == [c.model for c in view.cards if c.scores]
    assert {m["model"] for m in view.to_dict()["models"]} == {*THREE, "broken"}


def test_blind_cards_are_shuffled_and_open_comparisons_are_not(studio):
    copies = ["longest-3", "first-copy", "second-copy"]  # no weights: quick
    orders = {tuple(c.model for c in blind_view(studio, models=copies, reference="").cards) for _ in range(8)}
    assert len(orders) > 1  # 8 draws of 6 orders: all equal with probability 6**-7
    view = studio.comparisons.compare_all(DIALOGUE, "", THREE, decoding=core.decoding_settings(max_new_tokens=8))
    assert [c.model for c in view.cards] == THREE and view.revealed and view.comparison_id
    assert "A · original" in dict((v, k) for k, v in view.vote_choices()).values()


def test_a_comparison_needs_two_summaries_to_be_voted_on(studio):
    view = blind_view(studio, models=["broken", "longest-3"])
    assert view.comparison_id is None and "at least two summaries" in view.vote_note


def test_what_is_stored_the_dialogue_only_when_shared(studio):
    store = studio.votes
    first, second = blind_view(studio), blind_view(studio)
    kept = store.comparison(first.comparison_id)
    assert kept.dialogue_sha256 == dialogue_digest(core.clean_dialogue(DIALOGUE)) and kept.has_reference
    assert [(c.label, c.model, c.summary) for c in kept.cards] == [(c.label, c.model, c.text) for c in first.cards]
    assert all(c.rouge == pytest.approx(v.scores) for c, v in zip(kept.cards, first.cards))
    assert kept.settings["decoding"]["max_new_tokens"] == 8 and kept.shot_mode == "zero-shot"

    with pytest.raises(VoteRefused, match="not the one that was compared"):
        studio.voting.vote(first.comparison_id, "A", "10.0.0.2", share_dialogue=True, dialogue=DIALOGUE + " edited")
    with pytest.raises(UserError, match="Cannot share the dialogue: The dialogue is empty"):
        studio.voting.vote(first.comparison_id, "A", "10.0.0.2", share_dialogue=True, dialogue="  ")
    kept_private = studio.voting.vote(first.comparison_id, "A", "10.0.0.2", share_dialogue=False, dialogue=DIALOGUE)
    shared = studio.voting.vote(second.comparison_id, "tie", "10.0.0.2", share_dialogue=True, dialogue=DIALOGUE)
    with sqlite3.connect(store.path) as db:
        rows = dict(db.execute("SELECT comparison_id, dialogue FROM votes WHERE comparison_id IN (?, ?)",
                               (first.comparison_id, second.comparison_id)).fetchall())
        clients = {row[0] for row in db.execute("SELECT client FROM votes")}
        everything = "\n".join(str(v) for t in ("comparisons", "cards", "votes", "meta")
                               for row in db.execute(f"SELECT * FROM {t}") for v in row)
    assert rows == {first.comparison_id: None, second.comparison_id: core.clean_dialogue(DIALOGUE)}
    assert kept_private.dialogue is None and shared.dialogue == core.clean_dialogue(DIALOGUE)
    assert "10.0.0.2" not in everything and store.client_key("10.0.0.2") in clients  # address: keyed hash only
    assert REFERENCE not in everything and "Summarize the following conversation" not in everything


# ---------------------------------------------------------------------------------------------
# The store: refusals, atomic writes, the hourly limit, where the file lives


def cards(*models, rouge1=None, failed=()):
    """ShownCards A, B, ... for `models`; rouge1 (one value per model) gives every metric that value."""
    return [ShownCard(label="ABCDEFGH"[i], model=m, kind="seq2seq", ok=m not in failed,
                      summary=None if m in failed else f"summary by {m}",
                      rouge=None if rouge1 is None else dict.fromkeys(("rouge1", "rouge2", "rougeL", "rougeLsum"),
                                                                      rouge1[i]))
            for i, m in enumerate(models)]


def record(store, *models, blind=True, shot_mode="zero-shot", rouge1=None, failed=(), now=None, dialogue="d"):
    return store.record_comparison(cards(*models, rouge1=rouge1, failed=failed), blind=blind, shot_mode=shot_mode,
                                   settings={}, dialogue_sha256=dialogue_digest(dialogue),
                                   has_reference=rouge1 is not None, now=now)


def test_store_refusals_leave_the_tables_unchanged(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3", per_hour=100)
    blind = record(store, "alpha", "beta", "gamma", failed=("gamma",))
    open_ = record(store, "alpha", "beta", blind=False)
    old = record(store, "alpha", "beta", now=0.0)
    before = table_rows(store.path)
    cases = {
        "no-such-comparison-id-0000": "Unknown comparison id",
        "'; DROP TABLE votes; --": "Unknown comparison id",
    }
    for comparison_id, message in cases.items():
        with pytest.raises(VoteRefused, match=message):
            store.cast_vote(comparison_id, "A", "h")
    refused = [(blind, "D", "no card D"), (blind, "C", "Card C has no summary"),
               (blind, "alpha", "not a card of this blind comparison"),
               (blind, "gpt-4", "not a card of this blind comparison"), (blind, "", "Choose the best summary"),
               (open_, "gamma", r"'gamma' is not a model of this comparison \(alpha, beta\)"),
               (open_, "made-up-model", "not a model of this comparison"), (old, "A", "expired")]
    for comparison_id, choice, message in refused:
        with pytest.raises(VoteRefused, match=message) as caught:
            store.cast_vote(comparison_id, choice, "h")
        assert "\n" not in str(caught.value)
    assert table_rows(store.path) == before
    assert store.cast_vote(open_, "beta", "h").winner == "beta"  # a model name, where names are shown
    with pytest.raises(VoteRefused, match="already has its vote"):
        store.cast_vote(open_, "A", "h")


def test_a_half_written_comparison_is_not_kept(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3")
    twice = cards("a", "b")
    twice[1] = ShownCard("A", "b", "seq2seq", True, "s", None)  # two cards labelled A: the insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.record_comparison(twice, blind=True, shot_mode="zero-shot", settings={}, dialogue_sha256="x",
                                has_reference=False)
    assert store.counts() == {"comparisons": 0, "cards": 0, "votes": 0}


def test_votes_per_client_and_hour_are_limited(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3", per_hour=2)
    ids = [record(store, "a", "b") for _ in range(5)]
    store.cast_vote(ids[0], "A", "1.1.1.1", now=1000.0)
    store.cast_vote(ids[1], "B", "1.1.1.1", now=1001.0)
    with pytest.raises(VoteRefused, match="Vote limit reached: 2 votes an hour"):
        store.cast_vote(ids[2], "A", "1.1.1.1", now=1002.0)
    store.cast_vote(ids[2], "A", "2.2.2.2", now=1002.0)  # another address
    store.cast_vote(ids[3], "A", "1.1.1.1", now=1000.0 + 3601)  # an hour later
    assert store.counts()["votes"] == 4
    assert votes_per_hour({}) == DEFAULT_VOTES_PER_HOUR and votes_per_hour({"STUDIO_VOTES_PER_HOUR": "5"}) == 5
    with pytest.raises(UserError, match="STUDIO_VOTES_PER_HOUR must be a whole number"):
        votes_per_hour({"STUDIO_VOTES_PER_HOUR": "lots"})
    off = VoteStore(tmp_path / "votes.sqlite3", per_hour=0)
    with pytest.raises(VoteRefused, match="turned off"):
        off.cast_vote(ids[4], "A", "3.3.3.3")


def test_expired_comparisons_nobody_voted_on_are_dropped(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3", ttl=10)
    voted, ignored = record(store, "a", "b", now=100.0), record(store, "a", "b", now=100.0)
    store.cast_vote(voted, "A", "h", now=105.0)
    record(store, "a", "b", now=1000.0)
    assert store.comparison(voted) is not None and store.comparison(ignored) is None
    assert store.counts() == {"comparisons": 2, "cards": 4, "votes": 1}


def test_database_location_and_bad_files(tmp_path):
    assert default_path({"STUDIO_VOTES_DB": "/x/v.db"}) == Path("/x/v.db")
    space = tmp_path / "persistent"
    space.mkdir()
    assert default_path({"SPACE_ID": "u/s"}, space_data=space) == space / "votes.sqlite3"
    assert default_path({"SPACE_ID": "u/s"}, space_data=tmp_path / "none") == ROOT / "data" / "votes.sqlite3"
    local = default_path({})
    assert local == ROOT / "data" / "votes.sqlite3"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(local)], cwd=ROOT)
    assert ignored.returncode == 0, "data/ must be git-ignored: the database is never a tracked file"
    not_a_db = tmp_path / "notes.sqlite3"
    not_a_db.write_text("hello, not a database " * 100)
    with pytest.raises(UserError, match=r"votes database .*notes\.sqlite3: file is not a database"):
        VoteStore(not_a_db)
    with pytest.raises(UserError, match="no votes database at"):
        VoteStore.open_existing(tmp_path / "missing.sqlite3")
    store = VoteStore(tmp_path / "fresh" / "votes.sqlite3")
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"


# ---------------------------------------------------------------------------------------------
# The schema: migrations by PRAGMA user_version, rows read by column name

# The schema as the releases before user_version wrote it (copied, not imported: it must not follow
# the code). FIRST_RELEASE lacks cards.support, which those releases added with ALTER TABLE.
BEFORE_USER_VERSION = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE comparisons (id TEXT PRIMARY KEY, created REAL NOT NULL, expires REAL NOT NULL, blind INTEGER NOT NULL,
    shot_mode TEXT NOT NULL, settings TEXT NOT NULL, dialogue_sha256 TEXT NOT NULL, has_reference INTEGER NOT NULL);
CREATE TABLE cards (comparison_id TEXT NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE, label TEXT NOT NULL,
    position INTEGER NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL, ok INTEGER NOT NULL, summary TEXT,
    rouge1 REAL, rouge2 REAL, rougeL REAL, rougeLsum REAL, support REAL, PRIMARY KEY (comparison_id, label));
CREATE TABLE votes (id INTEGER PRIMARY KEY, comparison_id TEXT NOT NULL UNIQUE REFERENCES comparisons(id),
    created REAL NOT NULL, verdict TEXT NOT NULL CHECK (verdict IN ('best', 'tie', 'bad')), winner_label TEXT,
    client TEXT NOT NULL, dialogue TEXT, CHECK ((verdict = 'best') = (winner_label IS NOT NULL)));
CREATE INDEX votes_by_client ON votes (client, created);
CREATE INDEX comparisons_by_expiry ON comparisons (expires);
"""
FIRST_RELEASE = BEFORE_USER_VERSION.replace(" rougeLsum REAL, support REAL,", " rougeLsum REAL,")
OLD_KEY = "ab" * 32
COMPARISON_ID = "c" * 24


def old_database(path: Path, schema: str, now: float) -> Path:
    """A votes file as an older release left it: one blind comparison of two cards, voted B by 1.1.1.1."""
    support = ", support REAL" in schema
    with sqlite3.connect(path) as db:
        db.executescript(schema)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema", "1"), ("client_key", OLD_KEY)])
        db.execute("INSERT INTO comparisons VALUES (?, ?, ?, 1, 'zero-shot', '{\"k\": 1}', 'sha', 1)",
                   (COMPARISON_ID, now - 60, now + 3600))
        for position, (label, model, rouge1) in enumerate((("A", "alpha", 0.25), ("B", "beta", 0.5))):
            values = [COMPARISON_ID, label, position, model, "seq2seq", 1, f"by {model}", rouge1, 0.1, 0.2, 0.3]
            db.execute(f"INSERT INTO cards VALUES ({', '.join('?' * (len(values) + support))})",
                       values + [0.75] * support)
        client = hmac.new(OLD_KEY.encode(), b"1.1.1.1", hashlib.sha256).hexdigest()[:32]
        db.execute("INSERT INTO votes VALUES (1, ?, ?, 'best', 'B', ?, NULL)", (COMPARISON_ID, now - 30, client))
    return path


@pytest.mark.parametrize("schema", [BEFORE_USER_VERSION, FIRST_RELEASE], ids=["current", "first-release"])
def test_a_database_from_an_older_release_opens_and_upgrades(tmp_path, schema):
    now = time.time()
    path = old_database(tmp_path / "votes.sqlite3", schema, now)
    store = VoteStore(path, per_hour=2)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
        assert dict(db.execute("SELECT key, value FROM meta")) == {"client_key": OLD_KEY}  # version row gone
    [ballot] = store.ballots()
    shown = ballot.comparison
    assert (ballot.id, ballot.verdict, ballot.winner, ballot.dialogue) == (1, "best", "beta", None)
    assert (shown.id, shown.blind, shown.shot_mode, shown.settings, shown.has_reference) == \
        (COMPARISON_ID, True, "zero-shot", {"k": 1}, True)
    assert [(c.label, c.model, c.summary) for c in shown.cards] == [("A", "alpha", "by alpha"), ("B", "beta", "by beta")]
    assert shown.cards[1].rouge == {"rouge1": 0.5, "rouge2": 0.1, "rougeL": 0.2, "rougeLsum": 0.3}
    assert [c.support for c in shown.cards] == ([0.75, 0.75] if schema is BEFORE_USER_VERSION else [None, None])
    # The client key is kept: the old vote still counts toward the hourly limit of that address.
    store.cast_vote(record(store, "a", "b"), "A", "1.1.1.1")
    with pytest.raises(VoteRefused, match="Vote limit reached"):
        store.cast_vote(record(store, "a", "b"), "A", "1.1.1.1")
    newer = store.record_comparison([ShownCard("A", "a", "seq2seq", True, "s", None, support=0.5),
                                     ShownCard("B", "b", "seq2seq", True, "t", None)], blind=False,
                                    shot_mode="zero-shot", settings={}, dialogue_sha256="x", has_reference=False)
    assert [c.support for c in VoteStore(path).comparison(newer).cards] == [0.5, None]  # reopened: no change
    assert store.integrity_check() == "ok"


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    from summarizer.votes import store as store_module

    path = old_database(tmp_path / "votes.sqlite3", FIRST_RELEASE, 1000.0)

    def breaks_halfway(db):
        db.execute("ALTER TABLE votes ADD COLUMN half_written TEXT")
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, breaks_halfway))
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with pytest.raises(UserError, match=r"votes database .*votes\.sqlite3: disk I/O error$"):
        VoteStore(path)
    with sqlite3.connect(path) as db:  # not one step of the three: still the first release
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        assert "support" not in {row[1] for row in db.execute("PRAGMA table_info(cards)")}
        assert "half_written" not in {row[1] for row in db.execute("PRAGMA table_info(votes)")}
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("1",)
    monkeypatch.undo()
    assert VoteStore(path).ballots()[0].winner == "beta"


def test_a_database_from_a_newer_release_is_refused_in_one_line(tmp_path):
    path = VoteStore(tmp_path / "votes.sqlite3").path
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match=rf"made by a newer release \(schema version {SCHEMA_VERSION + 1};") as caught:
        VoteStore(path)
    assert "\n" not in str(caught.value)


def test_rows_are_read_by_column_name_not_position(tmp_path):
    """The same data in tables whose columns come in another order reads the same."""
    path = tmp_path / "votes.sqlite3"
    shuffled = BEFORE_USER_VERSION.replace(
        "rouge1 REAL, rouge2 REAL, rougeL REAL, rougeLsum REAL, support REAL,",
        "support REAL, rougeLsum REAL, rougeL REAL, rouge2 REAL, rouge1 REAL,").replace(
        "id TEXT PRIMARY KEY, created REAL NOT NULL, expires REAL NOT NULL,",
        "expires REAL NOT NULL, created REAL NOT NULL, id TEXT PRIMARY KEY,")
    assert shuffled.count("support REAL, rougeLsum") == 1 and shuffled.count("expires REAL NOT NULL, created") == 1
    with sqlite3.connect(path) as db:
        db.executescript(shuffled)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    store = VoteStore(path)
    comparison = store.record_comparison(cards("x", "y", rouge1=[0.25, 0.5]), blind=True, shot_mode="one-shot",
                                         settings={"s": 2}, dialogue_sha256="d", has_reference=True, now=500.0)
    store.cast_vote(comparison, "B", "h", now=510.0)
    [ballot] = store.ballots()
    assert (ballot.created, ballot.comparison.created, ballot.comparison.expires) == (510.0, 500.0, 500.0 + store.ttl)
    assert ballot.winner == "y" and ballot.comparison.cards[1].rouge == dict.fromkeys(
        ("rouge1", "rouge2", "rougeL", "rougeLsum"), 0.5)
    assert ballot.comparison.cards[0].support is None and ballot.comparison.settings == {"s": 2}


# ---------------------------------------------------------------------------------------------
# The leaderboard's math


def hand_made_votes(tmp_path) -> VoteStore:
    """A always beats B, B always beats C (pairs and best-of-3), plus ties and "all bad"."""
    store = VoteStore(tmp_path / "votes.sqlite3", per_hour=1000)
    for _ in range(6):
        store.cast_vote(record(store, "A-model", "B-model"), "A", "h")
        store.cast_vote(record(store, "C-model", "B-model"), "B", "h")
    for _ in range(3):
        store.cast_vote(record(store, "C-model", "B-model", "A-model"), "C", "h")  # A-model is card C
    for verdict in ("tie", "tie", "bad", "bad", "bad"):
        store.cast_vote(record(store, "C-model", "B-model"), verdict, "h")
    return store


def test_leaderboard_recovers_a_known_order_and_equals_the_library_fit(tmp_path):
    board = leaderboard.compute(hand_made_votes(tmp_path).ballots())
    rows = {s.model: s for s in board.standings}
    assert [s.model for s in board.standings] == ["A-model", "B-model", "C-model"]
    assert rows["A-model"].strength > rows["B-model"].strength > rows["C-model"].strength
    models = ["A-model", "B-model", "C-model"]  # fitted in name order
    data = [(0, [1])] * 6 + [(1, [2])] * 6 + [(0, [2, 1])] * 3
    expected = choix.ilsr_top1(3, data, alpha=leaderboard.ALPHA)
    assert [rows[m].strength for m in models] == pytest.approx(list(expected))
    for row in board.standings:
        assert row.low <= row.strength <= row.high
    # ties and "all bad" count as votes, never as wins
    assert (rows["A-model"].votes, rows["A-model"].wins) == (9, 9)
    assert (rows["B-model"].votes, rows["B-model"].wins, rows["B-model"].ties, rows["B-model"].all_bad) == (20, 6, 2, 3)
    assert (rows["C-model"].votes, rows["C-model"].wins) == (14, 0)
    assert rows["B-model"].win_rate == pytest.approx(6 / 20)
    assert (board.votes, board.best, board.ties, board.all_bad) == (20, 15, 2, 3)
    without = leaderboard.compute([b for b in hand_made_votes(tmp_path / "again").ballots() if b.verdict == "best"])
    assert [s.strength for s in without.standings] == pytest.approx([s.strength for s in board.standings])


def test_leaderboard_filters_and_rouge_vs_people(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite3", per_hour=1000)
    # 3 votes where the pick had the highest ROUGE, 1 where it did not; 1 without a reference
    store.cast_vote(record(store, "x", "y", rouge1=[0.5, 0.2]), "A", "h")
    store.cast_vote(record(store, "x", "y", rouge1=[0.4, 0.3], shot_mode="few-shot"), "A", "h")
    store.cast_vote(record(store, "x", "y", "z", rouge1=[0.3, 0.3, 0.1], blind=False), "B", "h")  # a tie for top
    store.cast_vote(record(store, "x", "y", rouge1=[0.6, 0.1]), "B", "h")
    store.cast_vote(record(store, "x", "y"), "A", "h")
    board = leaderboard.compute(store.ballots())
    agreement = board.agreement["rouge1"]
    assert (agreement["votes"], agreement["agree"]) == (4, 3)
    assert agreement["rate"] == pytest.approx(0.75)
    assert agreement["chance"] == pytest.approx((0.5 + 0.5 + 2 / 3 + 0.5) / 4)
    rows = {s.model: s for s in board.standings}
    assert rows["x"].mean_rouge1 == pytest.approx((0.5 + 0.4 + 0.3 + 0.6) / 4) and rows["x"].scored == 4
    assert rows["z"].mean_rougeL == pytest.approx(0.1)
    assert leaderboard.compute(store.ballots(), shot_mode="few-shot").votes == 1
    assert leaderboard.compute(store.ballots(), blind_only=True).votes == 4
    assert leaderboard.compute(store.ballots(), shot_mode="one-shot").standings == []
    with pytest.raises(UserError, match="unknown shot filter"):
        leaderboard.compute(store.ballots(), shot_mode="ten-shot")
    note = core.leaderboard_note(board)
    assert "3/4 (75%" in note and "ROUGE vs people" in note
    assert list(core.leaderboard_table(board)["model"])[:2] == ["x", "y"] or len(board.standings) == 3
    assert core.leaderboard_figure(board) is not None
    assert core.leaderboard_figure(leaderboard.compute([])) is None


# ---------------------------------------------------------------------------------------------
# CLI: the same numbers as the tab


def test_cli_stats_and_export(tmp_path, capsys):
    store = hand_made_votes(tmp_path)
    formula = '=HYPERLINK("http://x")'  # text a spreadsheet would run
    shared = record(store, "A-model", "B-model", "C-model", rouge1=[0.1, 0.2, 0.3], dialogue=formula)
    store.cast_vote(shared, "A", "h", dialogue=formula)
    store.cast_vote(record(store, "A-model", "B-model", blind=False, shot_mode="one-shot"), "B", "h")

    assert main(["votes", "stats", "--db", str(store.path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    registry = tmp_path / "models.toml"
    registry.write_text('[models.longest-3]\nkind = "extractive"\n', encoding="utf-8")
    studio = core.Studio(Registry.from_file(registry), data_source=str(tmp_path), votes=store)
    assert printed == json.loads(json.dumps(studio.voting.leaderboard("all", False).to_dict()))  # the tab's numbers
    assert main(["votes", "stats", "--db", str(store.path), "--shots", "one-shot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["votes"] == 1
    assert main(["votes", "stats", "--db", str(store.path), "--blind-only"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("21 vote(s)") and "A-model" in text and "strength" in text

    out = tmp_path / "votes.jsonl"
    assert main(["votes", "export", "--db", str(store.path), "--format", "jsonl", "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 22 and lines[-2]["dialogue"] == '=HYPERLINK("http://x")'
    assert all(line["dialogue"] is None for line in lines[:-2] + lines[-1:])
    assert lines[0]["verdict"] == "best" and lines[0]["model"] == "A-model" and len(lines[0]["cards"]) == 2
    assert not any("client" in line for line in lines)
    assert main(["votes", "export", "--db", str(store.path), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6 * 2 + 6 * 2 + 3 * 3 + 5 * 2 + 3 + 2 and "client" not in rows[0]
    assert {r["dialogue"] for r in rows if r["dialogue"]} == {"'=HYPERLINK(\"http://x\")"}
    assert sum(r["picked"] == "True" for r in rows) == 15 + 2

    assert main(["votes", "stats", "--db", str(tmp_path / "none.sqlite3")]) == 2
    assert "no votes database at" in capsys.readouterr().err



def test_votes_without_persistent_storage_on_a_space_say_so(tmp_path):
    from summarizer.votes.store import lasts_until_restart

    bucket, old_disk = tmp_path / "bucket", tmp_path / "data"
    old_disk.mkdir()
    local = ROOT / "data" / "votes.sqlite3"
    assert not lasts_until_restart(local, {})  # not a Space: a local file, it stays
    assert lasts_until_restart(local, {"SPACE_ID": "u/s"}, space_data=old_disk)
    assert not lasts_until_restart(bucket / "votes.sqlite3",
                                   {"SPACE_ID": "u/s", "STUDIO_VOTES_DB": str(bucket / "votes.sqlite3")})
    assert not lasts_until_restart(old_disk / "votes.sqlite3", {"SPACE_ID": "u/s"}, space_data=old_disk)
