"""Votes on comparisons, kept in one SQLite file.

When a comparison finishes, the server records what it showed under an unguessable id: the
models in display order (cards A, B, ...), settings, summaries and ROUGE, the dialogue's SHA-256
and whether it was blind. A vote names that id and one of its cards (or "tie" / "bad") and is
checked against the record, never against what the client says it saw. The record and its cards
are written in one transaction, and so is a vote; `votes.comparison_id` is UNIQUE, so a second
vote on a comparison cannot be stored even when two arrive at once. The journal is a WAL with
synchronous=FULL: a vote that was answered with success survives a crash of the server.

Rows are read by column name (sqlite3.Row), never by position. The schema's version is SQLite's
own `PRAGMA user_version`: opening a database applies the migrations it lacks, all of them in one
transaction with the new version number, so a database is never left half-migrated.

Privacy: the dialogue is stored only when the voter shares it; otherwise only its SHA-256 (to
count duplicates). Client addresses are stored only as a keyed hash (the key never leaves the
file), for the hourly rate limit. Prompts and references are never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from .. import settings
from ..errors import UserError, one_line
from ..rouge import METRICS

VOTES_DB_ENV = "STUDIO_VOTES_DB"
VOTES_PER_HOUR_ENV = "STUDIO_VOTES_PER_HOUR"
DEFAULT_VOTES_PER_HOUR = settings.BY_NAME["STUDIO_VOTES_PER_HOUR"].default
COMPARISON_TTL = 24 * 3600.0  # how long a comparison can be voted on
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
VERDICTS = ("best", "tie", "bad")
REPO_ROOT = Path(__file__).resolve().parents[2]

_TIE_WORDS = {"tie", "all equally good", "equally good", "all good"}
_BAD_WORDS = {"bad", "all bad"}
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_LABEL_PATTERN = re.compile(r"(?:summary|card)?\s*([A-Za-z])", re.IGNORECASE)

# The first release's schema. Later changes are MIGRATIONS, never edits here: a database made by
# any release upgrades step by step.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    blind INTEGER NOT NULL,
    shot_mode TEXT NOT NULL,
    settings TEXT NOT NULL,
    dialogue_sha256 TEXT NOT NULL,
    has_reference INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cards (
    comparison_id TEXT NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    ok INTEGER NOT NULL,
    summary TEXT,
    rouge1 REAL, rouge2 REAL, rougeL REAL, rougeLsum REAL,
    PRIMARY KEY (comparison_id, label)
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY,
    comparison_id TEXT NOT NULL UNIQUE REFERENCES comparisons(id),
    created REAL NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('best', 'tie', 'bad')),
    winner_label TEXT,
    client TEXT NOT NULL,
    dialogue TEXT,
    CHECK ((verdict = 'best') = (winner_label IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS votes_by_client ON votes (client, created);
CREATE INDEX IF NOT EXISTS comparisons_by_expiry ON comparisons (expires);
"""
ROUGE_COLUMNS = METRICS  # one column per ROUGE metric
COMPARISON_COLUMNS = ("id", "created", "expires", "blind", "shot_mode", "settings", "dialogue_sha256",
                      "has_reference")
CARD_COLUMNS = ("comparison_id", "label", "position", "model", "kind", "ok", "summary", *ROUGE_COLUMNS, "support")


class VoteRefused(UserError):
    """A vote the server will not store; the message says why, in one line."""


def default_path(environ=os.environ, space_data: Path = Path("/data")) -> Path:
    """$STUDIO_VOTES_DB (on a Space: a file in a mounted Storage Bucket); on a Space that still has
    the old persistent disk, /data/votes.sqlite3; else data/ here (on a Space: lost at restart).

    data/ is git-ignored, so the database is never among the checkout's tracked files.
    """
    configured = settings.text(VOTES_DB_ENV, environ)
    if configured:
        return Path(configured).expanduser()
    if settings.text("SPACE_ID", environ) and space_data.is_dir() and os.access(space_data, os.W_OK):
        return space_data / "votes.sqlite3"
    return REPO_ROOT / "data" / "votes.sqlite3"


def lasts_until_restart(path: str | os.PathLike, environ=os.environ, space_data: Path = Path("/data")) -> bool:
    """Whether the votes database at `path` is on a Space's own disk, which a restart wipes: on a
    Space, unless $STUDIO_VOTES_DB names it (a mounted Storage Bucket) or it is on the old
    persistent /data disk. The hub dataset copy ($STUDIO_VOTES_REPO) survives either way."""
    if not settings.text("SPACE_ID", environ) or settings.text(VOTES_DB_ENV, environ):
        return False
    return not Path(path).resolve().is_relative_to(space_data.resolve())


def votes_per_hour(environ=os.environ) -> int:
    return settings.number(VOTES_PER_HOUR_ENV, environ, minimum=0)


def dialogue_digest(dialogue: str) -> str:
    return hashlib.sha256(dialogue.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ShownCard:
    """One card as the server showed it."""
    label: str
    model: str
    kind: str
    ok: bool  # it has a summary (its model ran)
    summary: str | None
    rouge: dict[str, float] | None  # None without a reference
    support: float | None = None  # faithfulness support against the dialogue; None before it was stored

    def to_dict(self) -> dict:
        return {"card": self.label, "model": self.model, "kind": self.kind, "ok": self.ok,
                "summary": self.summary, "rouge": self.rouge, "support": self.support}


@dataclass(frozen=True)
class Shown:
    """A finished comparison as the server recorded it."""
    id: str
    created: float
    expires: float
    blind: bool
    shot_mode: str
    settings: dict
    dialogue_sha256: str
    has_reference: bool
    cards: tuple[ShownCard, ...]

    def card(self, label: str) -> ShownCard | None:
        return next((c for c in self.cards if c.label == label), None)


@dataclass(frozen=True)
class Ballot:
    """A stored vote with the comparison it was cast on."""
    id: int
    created: float
    verdict: str  # best | tie | bad
    winner_label: str | None
    comparison: Shown
    dialogue: str | None = None  # only when the voter shared it

    @property
    def winner(self) -> str | None:
        card = self.comparison.card(self.winner_label) if self.winner_label else None
        return card.model if card else None

    @property
    def candidates(self) -> list[ShownCard]:
        """The cards one could pick: those with a summary."""
        return [c for c in self.comparison.cards if c.ok]

    def to_dict(self) -> dict:
        """The reveal: every card with its model, and the pick."""
        return {"comparison_id": self.comparison.id, "verdict": self.verdict, "card": self.winner_label,
                "model": self.winner, "blind": self.comparison.blind,
                "shared_dialogue": self.dialogue is not None,
                "models": [{**c.to_dict(), "picked": c.label == self.winner_label}
                           for c in self.comparison.cards]}


class VoteStore:
    """The votes database: thread-safe (one short-lived connection per call)."""

    def __init__(self, path: str | os.PathLike | None = None, ttl: float = COMPARISON_TTL,
                 per_hour: int | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.ttl = ttl
        self.per_hour = votes_per_hour() if per_hour is None else per_hour
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise sqlite3.OperationalError(f"journal mode {mode!r} instead of WAL")
                _migrate(db)
                self._client_key = db.execute("SELECT value FROM meta WHERE key = 'client_key'").fetchone()["value"]
        except (sqlite3.Error, OSError, UserError) as err:
            raise UserError(f"votes database {self.path}: {one_line(err)}") from None

    @classmethod
    def open_existing(cls, path: str | os.PathLike | None = None) -> "VoteStore":
        """The store at `path` (default as the app's), refusing to create one (for the CLI)."""
        path = Path(path) if path is not None else default_path()
        if not path.is_file():
            raise UserError(f"no votes database at {path} (the app writes it; choose another with "
                            f"--db or ${VOTES_DB_ENV})")
        return cls(path)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=FULL")  # an answered vote is on disk, even on power loss
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    # --- writes ---------------------------------------------------------------------------------

    def record_comparison(self, cards: Sequence[ShownCard], *, blind: bool, shot_mode: str, settings: dict,
                          dialogue_sha256: str, has_reference: bool, now: float | None = None) -> str:
        """Store a finished comparison; its id, which a vote must name."""
        now = time.time() if now is None else now
        comparison_id = secrets.token_urlsafe(18)
        with self._connect() as db, _transaction(db):
            # Comparisons nobody voted on are not kept past their expiry.
            db.execute("DELETE FROM comparisons WHERE expires < ? AND id NOT IN (SELECT comparison_id FROM votes)",
                       (now,))
            db.execute(_insert("comparisons", COMPARISON_COLUMNS),
                       (comparison_id, now, now + self.ttl, int(blind), shot_mode,
                        json.dumps(settings, sort_keys=True), dialogue_sha256, int(has_reference)))
            db.executemany(_insert("cards", CARD_COLUMNS),
                           [(comparison_id, c.label, i, c.model, c.kind, int(c.ok), c.summary,
                             *((c.rouge or {}).get(m) for m in ROUGE_COLUMNS), c.support)
                            for i, c in enumerate(cards)])
        return comparison_id

    def cast_vote(self, comparison_id: str, choice: str, client: str | None = None,
                  dialogue: str | None = None, now: float | None = None) -> Ballot:
        """Store a vote on a recorded comparison, or refuse it with a one-line VoteRefused.

        `choice` is a card letter, a model name (comparisons that were not blind), "tie" or "bad".
        `dialogue` is stored with the vote when given, and only if it is the compared one.
        """
        now = time.time() if now is None else now
        comparison_id = comparison_id.strip() if isinstance(comparison_id, str) else ""
        with self._connect() as db, _transaction(db):
            shown = self._shown(db, comparison_id) if _ID_PATTERN.fullmatch(comparison_id) else None
            if shown is None:
                raise VoteRefused("Unknown comparison id: vote on a comparison this server ran "
                                  "(ids come with each finished comparison).")
            if shown.expires < now:
                raise VoteRefused(f"This comparison has expired (votes are taken for "
                                  f"{self.ttl / 3600:g} hours): run it again to vote.")
            if db.execute("SELECT 1 FROM votes WHERE comparison_id = ?", (comparison_id,)).fetchone():
                raise VoteRefused("This comparison already has its vote: one vote per comparison.")
            verdict, label = _parse_choice(shown, choice)
            if dialogue is not None and dialogue_digest(dialogue) != shown.dialogue_sha256:
                raise VoteRefused("The dialogue to share is not the one that was compared: paste it back "
                                  "or untick sharing.")
            key = self.client_key(client)
            if self.per_hour <= 0:
                raise VoteRefused("Voting is turned off on this server.")
            recent = db.execute("SELECT COUNT(*) FROM votes WHERE client = ? AND created > ?",
                                (key, now - 3600)).fetchone()[0]
            if recent >= self.per_hour:
                raise VoteRefused(f"Vote limit reached: {self.per_hour} votes an hour from one address. "
                                  "Try again later.")
            try:
                cursor = db.execute("INSERT INTO votes (comparison_id, created, verdict, winner_label, client, "
                                    "dialogue) VALUES (?, ?, ?, ?, ?, ?)",
                                    (comparison_id, now, verdict, label, key, dialogue))
            except sqlite3.IntegrityError:  # the UNIQUE constraint: a vote got there first
                raise VoteRefused("This comparison already has its vote: one vote per comparison.") from None
        return Ballot(cursor.lastrowid, now, verdict, label, shown, dialogue)

    def client_key(self, client: str | None) -> str:
        """The client address as stored: a keyed hash, enough to count votes, not to find anyone."""
        return hmac.new(self._client_key.encode(), (client or "local").encode(), hashlib.sha256).hexdigest()[:32]

    # --- reads ----------------------------------------------------------------------------------

    def comparison(self, comparison_id: str) -> Shown | None:
        with self._connect() as db:
            return self._shown(db, comparison_id)

    def ballots(self) -> list[Ballot]:
        """Every vote with the comparison it was cast on, oldest first."""
        with self._connect() as db, _transaction(db, "DEFERRED"):  # one snapshot for both queries
            cards: dict[str, list[ShownCard]] = {}
            for row in db.execute(f"SELECT {_columns('cards', CARD_COLUMNS)} FROM cards "
                                  "JOIN votes USING (comparison_id) ORDER BY cards.comparison_id, position"):
                cards.setdefault(row["comparison_id"], []).append(_card(row))
            rows = db.execute("SELECT votes.id AS vote_id, votes.created AS voted, votes.verdict, "
                              f"votes.winner_label, votes.dialogue, {_columns('comparisons', COMPARISON_COLUMNS)} "
                              "FROM votes JOIN comparisons ON comparisons.id = votes.comparison_id "
                              "ORDER BY votes.id").fetchall()
        return [Ballot(row["vote_id"], row["voted"], row["verdict"], row["winner_label"],
                       _shown(row, cards.get(row["id"], [])), row["dialogue"]) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("comparisons", "cards", "votes")}

    def last_vote_id(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COALESCE(MAX(id), 0) FROM votes").fetchone()[0]

    def integrity_check(self) -> str:
        with self._connect() as db:
            return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))

    def _shown(self, db: sqlite3.Connection, comparison_id: str) -> Shown | None:
        row = db.execute(f"SELECT {_columns('comparisons', COMPARISON_COLUMNS)} FROM comparisons WHERE id = ?",
                         (comparison_id,)).fetchone()
        if row is None:
            return None
        cards = [_card(r) for r in db.execute(f"SELECT {_columns('cards', CARD_COLUMNS)} FROM cards "
                                              "WHERE comparison_id = ? ORDER BY position", (comparison_id,))]
        return _shown(row, cards)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection, mode: str = "IMMEDIATE"):
    """BEGIN ... COMMIT, rolled back on any error: all of it is stored, or nothing.

    Writers BEGIN IMMEDIATE, taking the write lock before reading, so two voters never both
    read "no vote yet" and the rate-limit count cannot be raced.
    """
    db.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _parse_choice(shown: Shown, choice) -> tuple[str, str | None]:
    """(verdict, card letter) for a choice, or VoteRefused saying what the choices are."""
    text = " ".join(str(choice or "").split())
    pickable = [c.label for c in shown.cards if c.ok]
    options = f"{', '.join(pickable)}, 'tie' (all equally good) or 'bad' (all bad)"
    if text.lower() in _TIE_WORDS:
        return "tie", None
    if text.lower() in _BAD_WORDS:
        return "bad", None
    match = _LABEL_PATTERN.fullmatch(text)
    label = match.group(1).upper() if match else None
    if label is None and not shown.blind:
        label = next((c.label for c in shown.cards if c.model == text), None)
    if label is None:
        if not text:
            raise VoteRefused(f"Choose the best summary first: {options}.")
        if shown.blind:  # whatever was sent, say nothing about which models took part
            raise VoteRefused(f"{_quote(text)} is not a card of this blind comparison: vote {options}.")
        raise VoteRefused(f"{_quote(text)} is not a model of this comparison "
                          f"({', '.join(c.model for c in shown.cards)}): vote {options}.")
    card = shown.card(label)
    if card is None:
        raise VoteRefused(f"This comparison has no card {label}: vote {options}.")
    if not card.ok:
        raise VoteRefused(f"Card {label} has no summary (its model could not run): vote {options}.")
    return "best", label


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:39] + "…")


# --- the schema's versions ----------------------------------------------------------------------


def _create_v1(db: sqlite3.Connection) -> None:
    """The first release's tables (IF NOT EXISTS: a database made before user_version has them)."""
    for statement in SCHEMA_V1.split(";"):
        if statement.strip():
            db.execute(statement)


def _add_support(db: sqlite3.Connection) -> None:
    """Faithfulness support of each card's summary (docs/faithfulness.md), NULL in older rows."""
    if "support" not in {row["name"] for row in db.execute("PRAGMA table_info(cards)")}:
        db.execute("ALTER TABLE cards ADD COLUMN support REAL")
    db.execute("DELETE FROM meta WHERE key = 'schema'")  # the version row before user_version


# MIGRATIONS[i] takes a database from user_version i to i + 1. Append; never edit or reorder.
MIGRATIONS = (_create_v1, _add_support)
SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION in one transaction: every step and the new version
    number are stored together, or none of them. A database from a newer release is refused."""
    with _transaction(db):
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(f"made by a newer release (schema version {version}; this one reads up to "
                            f"{SCHEMA_VERSION}): update the app, or choose another file with ${VOTES_DB_ENV}")
        for migration in MIGRATIONS[version:]:
            migration(db)
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        db.execute("INSERT OR IGNORE INTO meta VALUES ('client_key', ?)", (secrets.token_hex(32),))


def _columns(table: str, names: Sequence[str]) -> str:
    return ", ".join(f"{table}.{name}" for name in names)


def _insert(table: str, names: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def _card(row: sqlite3.Row) -> ShownCard:
    rouge = {m: row[m] for m in ROUGE_COLUMNS} if row["rouge1"] is not None else None
    return ShownCard(label=row["label"], model=row["model"], kind=row["kind"], ok=bool(row["ok"]),
                     summary=row["summary"], rouge=rouge, support=row["support"])


def _shown(row: sqlite3.Row, cards: list[ShownCard]) -> Shown:
    return Shown(id=row["id"], created=row["created"], expires=row["expires"], blind=bool(row["blind"]),
                 shot_mode=row["shot_mode"], settings=json.loads(row["settings"]),
                 dialogue_sha256=row["dialogue_sha256"], has_reference=bool(row["has_reference"]),
                 cards=tuple(cards))
