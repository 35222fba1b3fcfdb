"""Votes through the running app: /vote beside /compare, forged votes, 50 voters at once, the hub
out of reach, and a server killed in the middle of a burst of votes.

Every test talks to the real app (app.py's Blocks on 127.0.0.1) through gradio_client, with its
vote store in tmp_path.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import write_registry, write_release_folder
from summarizer import studio as core
from summarizer.registry import Registry
from summarizer.votes import VoteStore
from summarizer.votes.sync import VoteSync, start_from_env
from test_reliability import assert_one_line_message, free_port, serving

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DIALOGUE = ("#Person1#: Hello, I am Anna. I would like 3 books, please.\n"
            "#Person2#: Of course. Shall I bring them to the library?\n"
            "#Person1#: Yes, the library is fine. Thank you very much.")
REFERENCE = "Anna orders 3 books to the library."
THREE = ["original", "peft-lora", "longest-3"]
COPIES = ["longest-3", "first-copy", "second-copy"]  # no weights: comparisons in milliseconds


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("votes-api")
    registry = write_registry(root / "models.toml", tiny_models)
    with registry.open("a", encoding="utf-8") as handle:
        handle.write('\n[models.broken]\nkind = "seq2seq"\npath = "/nonexistent/dialogsum-model"\n'
                     '\n[models.first-copy]\nkind = "extractive"\n\n[models.second-copy]\nkind = "extractive"\n')
    return {"root": root, "registry": registry, "data": write_release_folder(root / "dialogsum")}


def make_studio(lab, name: str, **store) -> core.Studio:
    votes = VoteStore(lab["root"] / f"{name}.sqlite3", **{"per_hour": 1000, **store})
    return core.Studio(Registry.from_file(lab["registry"]), data_source=str(lab["data"]),
                       results_path=lab["root"] / "no-results.json", output_dir=lab["root"] / "outputs", votes=votes)


@pytest.fixture(scope="module")
def served(lab):
    studio = make_studio(lab, "votes")
    with serving(studio) as (demo, url):
        yield {"studio": studio, "url": url}


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client
    return Client(served["url"], verbose=False)


def compare(client, models=COPIES, **kwargs):
    return client.predict(dialogue=DIALOGUE, reference=REFERENCE, models=models, max_new_tokens=8,
                          api_name="/compare", **kwargs)


def snapshot(store: VoteStore) -> dict[str, list]:
    with sqlite3.connect(store.path) as db:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("comparisons", "cards", "votes", "meta")}


def vote_rows(store: VoteStore, ids) -> list[tuple]:
    with sqlite3.connect(store.path) as db:
        marks = ",".join("?" * len(ids))
        return db.execute(f"SELECT comparison_id, winner_label FROM votes WHERE comparison_id IN ({marks})",
                          list(ids)).fetchall()


# ---------------------------------------------------------------------------------------------
# /vote beside /compare, blind over the API


def test_vote_endpoint_is_documented_beside_compare(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    vote = [p["parameter_name"] for p in endpoints["/vote"]["parameters"]]
    assert vote == ["comparison_id", "choice", "share_dialogue", "dialogue"]
    blind = next(p for p in endpoints["/compare"]["parameters"] if p["parameter_name"] == "blind")
    assert blind["parameter_has_default"] and blind["parameter_default"] is False  # scripts get names
    assert "/leaderboard" in endpoints


def test_blind_compare_over_the_api_hides_names_until_the_vote(client):
    cards, table, chart, results, notes = compare(client, models=[*THREE, "broken"], blind=True)
    assert results["blind"] and results["comparison_id"]
    for model in results["models"]:
        assert set(model) == {"card", "state", "summary", "error"}, model
    for text in (cards, notes, str(results)):
        for name in [*THREE, "broken", "seq2seq", "lora", "extractive", "nonexistent"]:
            assert name not in text, (name, text[:300])
    assert table["data"] == [] and chart is None and "ROUGE-1" not in cards
    done = [m["card"] for m in results["models"] if m["state"] == "done"]
    reveal = client.predict(comparison_id=results["comparison_id"], choice=done[-1], api_name="/vote")
    assert reveal["card"] == done[-1] and reveal["model"] in THREE and reveal["verdict"] == "best"
    assert sorted(m["model"] for m in reveal["models"]) == sorted([*THREE, "broken"])
    assert [m["card"] for m in reveal["models"]] == ["A", "B", "C", "D"]
    picked = [m for m in reveal["models"] if m["picked"]]
    assert len(picked) == 1 and picked[0]["summary"] == results["models"][ord(done[-1]) - 65]["summary"]
    assert all(m["rouge"] is not None for m in reveal["models"] if m["ok"])


def test_open_compare_names_the_models_and_takes_a_vote_by_name(client, served):
    *_, results, _ = compare(client)
    assert [m["model"] for m in results["models"]] == COPIES and not results["blind"]
    assert results["vote_choices"] == ["A", "B", "C", "tie", "bad"]
    reveal = client.predict(comparison_id=results["comparison_id"], choice="second-copy", api_name="/vote")
    assert reveal["card"] == "C" and reveal["model"] == "second-copy"
    board = client.predict(shot_mode="all", blind_only=False, api_name="/leaderboard")[3]
    assert board == served["studio"].voting.leaderboard().to_dict() and board["votes"] >= 1


# ---------------------------------------------------------------------------------------------
# Forgery: every refused vote gets one line and leaves the tables as they were


def test_forged_votes_are_refused_with_one_line_and_change_nothing(client, served):
    from gradio_client.exceptions import AppError

    store = served["studio"].votes
    blind = compare(client, models=["longest-3", "first-copy", "broken"], blind=True)[3]["comparison_id"]
    named = compare(client, models=["longest-3", "first-copy"])[3]["comparison_id"]
    voted = compare(client)[3]["comparison_id"]
    client.predict(comparison_id=voted, choice="A", api_name="/vote")
    expired = compare(client)[3]["comparison_id"]
    with sqlite3.connect(store.path) as db:  # as if a day had passed
        db.execute("UPDATE comparisons SET expires = created - 1 WHERE id = ?", (expired,))
    broken_card = next(c.label for c in store.comparison(blind).cards if c.model == "broken")
    before = snapshot(store)

    cases = [
        (dict(comparison_id="A" * 24, choice="A"), "Unknown comparison id"),
        (dict(comparison_id="../../etc/passwd", choice="A"), "Unknown comparison id"),
        (dict(comparison_id="", choice="tie"), "Unknown comparison id"),
        (dict(comparison_id=expired, choice="A"), "has expired"),
        (dict(comparison_id=voted, choice="B"), "already has its vote"),
        (dict(comparison_id=named, choice="peft-lora"), "'peft-lora' is not a model of this comparison"),
        (dict(comparison_id=named, choice="gpt-4o"), "'gpt-4o' is not a model of this comparison"),
        (dict(comparison_id=blind, choice="gpt-4o"), "is not a card of this blind comparison"),
        (dict(comparison_id=blind, choice="longest-3"), "is not a card of this blind comparison"),
        (dict(comparison_id=blind, choice=broken_card), f"Card {broken_card} has no summary"),
        (dict(comparison_id=blind, choice="Z"), "This comparison has no card Z"),
        (dict(comparison_id=named, choice="A", share_dialogue=True, dialogue="#Person1#: something else"),
         "not the one that was compared"),
    ]
    for arguments, message in cases:
        with pytest.raises(AppError) as caught:
            client.predict(**arguments, api_name="/vote")
        assert_one_line_message(caught.value, message)
    assert snapshot(store) == before
    # a blind refusal says nothing about which models took part
    messages = set()
    for name in ("longest-3", "peft-lora", "gpt-4o"):
        with pytest.raises(AppError) as caught:
            client.predict(comparison_id=blind, choice=name, api_name="/vote")
        messages.add(str(caught.value).replace(repr(name), "NAME"))
    assert len(messages) == 1


def test_votes_past_the_hourly_limit_are_refused(lab, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    monkeypatch.setenv("STUDIO_VOTES_DB", str(lab["root"] / "limited.sqlite3"))
    monkeypatch.setenv("STUDIO_VOTES_PER_HOUR", "2")
    studio = core.Studio(Registry.from_file(lab["registry"]), data_source=str(lab["data"]))
    with serving(studio) as (demo, url):
        client = Client(url, verbose=False)
        ids = [compare(client)[3]["comparison_id"] for _ in range(3)]
        for comparison_id in ids[:2]:
            client.predict(comparison_id=comparison_id, choice="A", api_name="/vote")
        before = snapshot(studio.votes)
        with pytest.raises(AppError) as caught:
            client.predict(comparison_id=ids[2], choice="A", api_name="/vote")
        assert_one_line_message(caught.value, "Vote limit reached: 2 votes an hour from one address")
        assert snapshot(studio.votes) == before


# ---------------------------------------------------------------------------------------------
# Load: 50 voters at once


def http_vote(url: str, comparison_id: str, choice: str) -> tuple[int, dict]:
    """A vote as a plain HTTP POST (the route the page's button uses too): no queue, no client."""
    import json
    import urllib.error
    import urllib.request

    body = json.dumps({"data": [comparison_id, choice, False, ""]}).encode()
    request = urllib.request.Request(f"{url}gradio_api/api/vote/", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_votes_are_not_queued_events(served):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{served['url']}config", timeout=30) as answer:
        config = json.loads(answer.read())
    votes = [d for d in config["dependencies"] if d.get("api_name") == "vote"]
    assert len(votes) == 1 and votes[0]["queue"] is False
    buttons = [d for d in config["dependencies"] if d.get("api_name") == "cast"]  # the page's Vote button
    assert len(buttons) == 1 and buttons[0]["queue"] is False
    compare_event = next(d for d in config["dependencies"] if d.get("api_name") == "compare")
    assert compare_event["queue"] is not False  # comparisons still wait their turn


def test_fifty_votes_at_once_on_25_comparisons_store_exactly_25(lab):
    studio = make_studio(lab, "fifty")
    n = 25
    views = [studio.comparisons.compare_all(f"{DIALOGUE}\n#Person2#: Voter {i}.", REFERENCE, COPIES) for i in range(n)]
    ids = [v.comparison_id for v in views]
    choices = [random.Random(i).choice(["A", "B", "C", "tie", "bad"]) for i in range(n)]
    ballots = [(ids[i % n], choices[i % n]) for i in range(2 * n)]  # two voters per comparison
    with serving(studio, queue_size=1) as (demo, url):  # the smallest line for model runs: no vote waits in it
        answers: list[tuple[int, dict] | None] = [None] * len(ballots)
        barrier = threading.Barrier(len(ballots), timeout=120)

        def voter(i: int) -> None:
            barrier.wait()
            answers[i] = http_vote(url, *ballots[i])

        threads = [threading.Thread(target=voter, args=(i,)) for i in range(len(ballots))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    assert all(a is not None for a in answers)
    assert not [a for a in answers if "queue" in str(a).lower()], answers
    stored = [i for i, (code, _) in enumerate(answers) if code == 200]
    second = [i for i, (code, body) in enumerate(answers)
              if code != 200 and "already has its vote" in str(body.get("error"))]
    assert len(stored) == n and len(second) == n, answers  # nothing else: no other refusal
    assert sorted(ballots[i][0] for i in stored) == sorted(ids)  # one stored per comparison
    rows = vote_rows(studio.votes, ids)
    assert len(rows) == n and studio.votes.counts()["votes"] == n
    expected = {ids[i]: (choices[i] if choices[i] in "ABC" else None) for i in range(n)}
    assert dict(rows) == expected
    print(f"\n50 votes on 25 comparisons: {len(stored)} stored, {len(second)} refused as second votes")


def test_vote_while_the_app_is_full_of_comparisons_is_stored_at_once(lab, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    studio = make_studio(lab, "busy")
    voted_on = studio.comparisons.compare_all(DIALOGUE, REFERENCE, COPIES).comparison_id
    release = threading.Event()
    original = studio.comparisons.compare

    def held(*args, **kwargs):  # a comparison that waits until the vote has been checked
        release.wait(120)
        yield from original(*args, **kwargs)

    monkeypatch.setattr(studio.comparisons, "compare", held)
    with serving(studio, queue_size=4) as (demo, url):
        n = 30
        outcomes: list[str] = [""] * n
        jobs = []

        def user(i: int) -> None:
            try:
                job = Client(url, verbose=False).submit(dialogue=f"{DIALOGUE}\n#Person2#: Burst {i}.",
                                                        models=COPIES, api_name="/compare")
                jobs.append(job)
                job.result(timeout=150)
                outcomes[i] = "ok"
            except AppError as err:
                outcomes[i] = "busy" if "The Studio is busy" in str(err) else f"app error: {err}"

        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(n)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while outcomes.count("busy") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            assert outcomes.count("busy") > 0, "the burst never filled the app"
            started = time.monotonic()
            code, body = http_vote(url, voted_on, "B")
            elapsed = time.monotonic() - started
            assert code == 200 and body["data"][0]["card"] == "B", body
            assert vote_rows(studio.votes, [voted_on]) == [(voted_on, "B")]  # stored before any comparison ran
            assert elapsed < 10, elapsed
        finally:
            release.set()
            for thread in threads:
                thread.join(timeout=200)
    assert set(outcomes) <= {"ok", "busy"}, outcomes


# ---------------------------------------------------------------------------------------------
# The hub out of reach


def test_votes_land_locally_while_the_hub_is_unreachable(lab, monkeypatch):
    from gradio_client import Client
    from huggingface_hub import HfApi, constants

    # Offline (as on CI): the scheduler cannot even create the repository; it says so and retries.
    store = VoteStore(lab["root"] / "offline.sqlite3")
    offline = start_from_env(store, {"STUDIO_VOTES_REPO": "someone/dialogsum-votes"})
    deadline = time.monotonic() + 20
    while offline.state != "retrying" and time.monotonic() < deadline:
        time.sleep(0.05)
    offline.stop()
    assert offline.state == "retrying" and "offline mode is enabled" in offline.last_error
    assert start_from_env(store, {}) is None

    # A hub that accepts connections and never answers: the worst case for a page that waits.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(hole.accept()) for _ in range(16)], daemon=True).start()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    studio = make_studio(lab, "hub-down")
    api = HfApi(endpoint=f"http://127.0.0.1:{hole.getsockname()[1]}", token="hf_not_a_real_token")
    studio.voting.sync = VoteSync(studio.votes, "someone/dialogsum-votes", api=api).start()
    try:
        with serving(studio) as (demo, url):
            client = Client(url, verbose=False)
            started = time.monotonic()
            for _ in range(3):
                comparison_id = compare(client)[3]["comparison_id"]
                client.predict(comparison_id=comparison_id, choice="B", api_name="/vote")
            elapsed = time.monotonic() - started
            assert held, "the sync never tried the hub"
            assert studio.voting.sync.state == "starting"  # still waiting for the hub's answer
            assert studio.votes.counts()["votes"] == 3 and elapsed < 30, elapsed
    finally:
        studio.voting.sync.stop()
        for connection, _ in held:
            connection.close()
        hole.close()


# ---------------------------------------------------------------------------------------------
# Crash: SIGKILL during a burst of votes


def _server_tmp(lab) -> Path:
    folder = lab["root"] / "server-tmp"
    folder.mkdir(exist_ok=True)
    return folder


def start_server(lab, db: Path, port: int) -> subprocess.Popen:
    registry = lab["root"] / "copies.toml"
    registry.write_text("".join(f'[models.{name}]\nkind = "extractive"\n\n' for name in COPIES), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SUMMARIZER_REGISTRY": str(registry),
           "DIALOGSUM_PATH": str(lab["data"]), "STUDIO_VOTES_DB": str(db), "STUDIO_VOTES_PER_HOUR": "1000",
           "STUDIO_WARMUP": "none", "STUDIO_QUEUE_SIZE": "64", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1", "OMP_NUM_THREADS": "1",
           # A server killed with SIGKILL cannot remove its temporary folder: keep it in the test's.
           "TMPDIR": str(_server_tmp(lab))}
    return subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=lab["root"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def connect(url: str, process: subprocess.Popen, timeout: float = 120):
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the server exited"
        try:
            return Client(url, verbose=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_server_killed_during_a_burst_of_votes_keeps_every_answered_vote(lab):
    from gradio_client import Client

    db, port = lab["root"] / "crash.sqlite3", free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_server(lab, db, port)
    try:
        client = connect(url, server)
        ids = [compare(client)[3]["comparison_id"] for _ in range(40)]
        spare = ids.pop()  # not voted before the crash: voted on after the restart
        answered: list[str] = []
        lock = threading.Lock()

        def voter(chunk: list[str]) -> None:
            own = Client(url, verbose=False)
            for comparison_id in chunk:
                try:
                    own.predict(comparison_id=comparison_id, choice="A", api_name="/vote")
                except Exception:  # the server is gone
                    return
                with lock:
                    answered.append(comparison_id)

        threads = [threading.Thread(target=voter, args=(ids[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(answered) < 10 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(server.pid, signal.SIGKILL)  # mid-burst: no chance to clean up
        server.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=60)
        assert server.returncode == -signal.SIGKILL
        assert 10 <= len(answered) < len(ids), len(answered)

        server = start_server(lab, db, port)  # restart on the same database
        client = connect(url, server)
        with sqlite3.connect(db) as handle:
            assert handle.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            stored = {row[0] for row in handle.execute("SELECT comparison_id FROM votes")}
        assert set(answered) <= stored and stored <= set(ids)
        reveal = client.predict(comparison_id=spare, choice="B", api_name="/vote")  # recorded before the crash
        assert reveal["model"] == "first-copy"
    finally:
        server.kill()
        server.wait(timeout=30)


# ---------------------------------------------------------------------------------------------
# Agents and links: /summarize, MCP behind a setting, a link that reopens a comparison


def test_summarize_endpoint_gives_one_models_text(client):
    assert client.predict(dialogue=DIALOGUE, model="longest-3", api_name="/summarize") == \
        compare(client, models=["longest-3"])[3]["models"][0]["summary"]
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as caught:
        client.predict(dialogue=DIALOGUE, model="no-such-model", api_name="/summarize")
    assert_one_line_message(caught.value, "no-such-model")


def test_mcp_is_behind_a_setting_and_refused_in_one_line_without_its_package(monkeypatch):
    import app

    assert not app.mcp_requested([], {}) and app.mcp_requested(["--mcp"], {})
    assert app.mcp_requested([], {"STUDIO_MCP": "1"}) and not app.mcp_requested([], {"STUDIO_MCP": "0"})
    monkeypatch.setitem(sys.modules, "mcp", None)  # as where the optional extra is not installed
    from summarizer.errors import UserError
    with pytest.raises(UserError, match=r"pip install \"gradio\[mcp\]"):
        app.check_mcp()


def test_deep_link_reopens_the_comparison_as_it_was_shown(client, served):
    import json
    import urllib.request

    cards, *_ = compare(client, blind=True)
    session = client.session_hash
    with urllib.request.urlopen(f"{served['url']}gradio_api/deep_link?session_hash={session}", timeout=30) as answer:
        link = answer.read().decode().strip('"')
    assert link
    with urllib.request.urlopen(f"{served['url']}?deep_link={link}", timeout=30) as answer:
        page = answer.read().decode()
    config = json.loads(page.split("window.gradio_config = ", 1)[1].split(";</script>", 1)[0])
    assert config["deep_link_state"] == "valid"
    shown = next(c for c in config["components"] if c["props"].get("elem_id") == "cards")
    assert shown["props"]["value"] == cards and "Summary A" in cards  # blind, as it was shown
