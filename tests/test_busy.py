"""A busy app: votes through gradio_client (as docs/app.md shows them) are never refused or held
up by comparisons, and model runs past the app's capacity get a one-line "busy" refusal.

The admission itself is tested on its own first (no server); then the real app (app.py's Blocks
on 127.0.0.1) through gradio_client, on models without weights (the extractive baseline and two
copies): comparisons in milliseconds, held open where a test needs a full line.
"""

from __future__ import annotations

import asyncio
import threading
import time

import gradio as gr
import pytest

from helpers import write_registry, write_release_folder
from summarizer import studio as core
from summarizer.registry import Registry
from summarizer.votes import VoteStore
from test_reliability import assert_one_line_message, serving
from webui.admission import Admission

DIALOGUE = ("#Person1#: Hello, I am Anna. I would like 3 books, please.\n"
            "#Person2#: Of course. Shall I bring them to the library?\n"
            "#Person1#: Yes, the library is fine. Thank you very much.")
COPIES = ["longest-3", "first-copy", "second-copy"]  # no weights: comparisons in milliseconds


# ---------------------------------------------------------------------------------------------
# The admission on its own


def test_admission_runs_in_turn_refuses_past_capacity_and_gives_places_back():
    admission = Admission(running=1, waiting=2)
    release = asyncio.Event()
    order: list[str] = []

    def work(name):
        order.append(f"start {name}")
        yield name
        order.append(f"end {name}")

    async def held(name):
        items = []
        async for item in admission(work)(name):
            await release.wait()
            items.append(item)
        return items[0]

    async def main():
        tasks = [asyncio.create_task(held(n)) for n in ("a", "b", "c")]
        await asyncio.sleep(0.1)
        assert admission.admitted == 3 and order == ["start a"]  # one runs, two wait their turn
        with pytest.raises(gr.Error) as caught:
            await admission(lambda: "d")()
        assert caught.value.message.startswith("The Studio is busy: 3 model requests are running or waiting")
        assert "\n" not in caught.value.message and "try again" in caught.value.message
        tasks[2].cancel()  # a client that goes away while waiting gives its place back
        await asyncio.sleep(0.05)
        assert admission.admitted == 2
        release.set()
        results = await asyncio.gather(*tasks[:2])
        assert results == ["a", "b"] and admission.admitted == 0
        assert await admission(lambda x: x * 2)(21) == 42  # a plain function too

        def fails():
            raise ValueError("model broke")
        with pytest.raises(ValueError, match="model broke"):
            await admission(fails)()
        assert admission.admitted == 0  # a failure gives its place back

    asyncio.run(main())
    assert order[:2] == ["start a", "end a"] and "start c" not in order
    with pytest.raises(ValueError, match="running must be at least 1"):
        Admission(running=0, waiting=3)


def test_admitted_functions_keep_their_signature_and_docstring():
    import inspect

    def compare(dialogue: str, models: list[str] | None = None, blind: bool = False):
        """Summaries of one dialogue."""
        yield dialogue

    wrapped = Admission()(compare)
    assert inspect.isasyncgenfunction(wrapped) and wrapped.__doc__ == compare.__doc__
    assert list(inspect.signature(wrapped).parameters) == ["dialogue", "models", "blind"]


# ---------------------------------------------------------------------------------------------
# The app under load, through gradio_client


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("busy")
    registry = write_registry(root / "models.toml", tiny_models)
    with registry.open("a", encoding="utf-8") as handle:
        handle.write('\n[models.first-copy]\nkind = "extractive"\n\n[models.second-copy]\nkind = "extractive"\n')
    return {"root": root, "registry": registry, "data": write_release_folder(root / "dialogsum")}


def make_studio(lab, name: str, per_hour: int = 1000) -> core.Studio:
    return core.Studio(Registry.from_file(lab["registry"]), data_source=str(lab["data"]),
                       results_path=lab["root"] / "no-results.json", output_dir=lab["root"] / "outputs",
                       votes=VoteStore(lab["root"] / f"{name}.sqlite3", per_hour=per_hour))


def stored(store: VoteStore, ids) -> dict[str, str | None]:
    return {b.comparison.id: b.winner_label for b in store.ballots() if b.comparison.id in set(ids)}


@pytest.mark.slow
def test_a_vote_during_a_burst_of_30_comparisons_is_stored_and_the_rest_are_told_busy(lab, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    studio = make_studio(lab, "burst")
    voted_on = studio.comparisons.compare_all(DIALOGUE, "", COPIES).comparison_id
    release = threading.Event()
    original = studio.comparisons.compare

    def held(*args, **kwargs):  # comparisons that run only once the vote is in
        release.wait(120)
        yield from original(*args, **kwargs)

    monkeypatch.setattr(studio.comparisons, "compare", held)
    with serving(studio, queue_size=4) as (demo, url):  # 1 running + 4 waiting: 5 admitted
        n = 30
        outcomes: list[str] = [""] * n
        refusals: list[AppError] = []

        def user(i: int) -> None:
            try:
                Client(url, verbose=False).predict(dialogue=f"{DIALOGUE}\n#Person2#: Burst {i}.",
                                                   models=COPIES, api_name="/compare")
                outcomes[i] = "ok"
            except AppError as err:
                outcomes[i] = "busy" if "busy" in str(err) else f"error: {err}"
                refusals.append(err)
            except Exception as err:  # "Queue is full!" (QueueError) among them: a failure
                outcomes[i] = f"unexpected {type(err).__name__}: {err}"

        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(n)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 90
        while outcomes.count("busy") < n - 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            assert outcomes.count("busy") == n - 5 and outcomes.count("") == 5, outcomes  # refused at once
            started = time.monotonic()
            reveal = Client(url, verbose=False).predict(comparison_id=voted_on, choice="B", api_name="/vote")
            elapsed = time.monotonic() - started
            assert reveal["card"] == "B" and stored(studio.votes, [voted_on]) == {voted_on: "B"}
            assert elapsed < 10, elapsed  # not behind the five comparisons, which still wait
            assert outcomes.count("") == 5
        finally:
            release.set()
            for thread in threads:
                thread.join(timeout=120)
    assert outcomes.count("ok") == 5 and outcomes.count("busy") == n - 5, outcomes
    assert_one_line_message(refusals[0], "The Studio is busy", "Please try again")
    print(f"\nburst of 30 comparisons, 5 admitted: 25 told busy, a vote through gradio_client stored in {elapsed:.2f} s")


@pytest.mark.slow
def test_fifty_votes_at_once_through_the_client_store_exactly_25(lab):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    studio = make_studio(lab, "fifty")
    n = 25
    ids = [studio.comparisons.compare_all(f"{DIALOGUE}\n#Person2#: Voter {i}.", "", COPIES).comparison_id for i in range(n)]
    choices = ["ABC"[i % 3] for i in range(n)]
    with serving(studio, queue_size=1) as (demo, url):  # the smallest line for model runs
        clients = [Client(url, verbose=False) for _ in range(5)]
        barrier = threading.Barrier(2 * n, timeout=60)
        answers: list[str] = [""] * (2 * n)

        def voter(i: int) -> None:
            barrier.wait()
            try:
                clients[i % 5].predict(comparison_id=ids[i % n], choice=choices[i % n], api_name="/vote")
                answers[i] = "stored"
            except AppError as err:
                answers[i] = "second" if "already has its vote" in str(err) else f"refused: {err}"
            except Exception as err:
                answers[i] = f"unexpected {type(err).__name__}: {err}"

        started = time.monotonic()
        threads = [threading.Thread(target=voter, args=(i,)) for i in range(2 * n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        elapsed = time.monotonic() - started
    assert answers.count("stored") == n and answers.count("second") == n, answers
    assert stored(studio.votes, ids) == dict(zip(ids, choices)) and studio.votes.counts()["votes"] == n
    print(f"\n50 votes through gradio_client on 25 comparisons: {n} stored, {n} second votes, {elapsed:.1f} s")


@pytest.mark.slow
def test_the_hourly_limit_holds_for_votes_sent_at_once(lab):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    studio = make_studio(lab, "limited", per_hour=2)
    ids = [studio.comparisons.compare_all(f"{DIALOGUE}\n#Person2#: Limit {i}.", "", COPIES).comparison_id for i in range(6)]
    with serving(studio) as (demo, url):
        client = Client(url, verbose=False)
        answers: list[str] = [""] * len(ids)

        def voter(i: int) -> None:
            try:
                client.predict(comparison_id=ids[i], choice="A", api_name="/vote")
                answers[i] = "stored"
            except AppError as err:
                answers[i] = "limit" if "Vote limit reached: 2 votes an hour" in str(err) else str(err)

        threads = [threading.Thread(target=voter, args=(i,)) for i in range(len(ids))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(answers) == ["limit"] * 4 + ["stored"] * 2, answers
    assert studio.votes.counts()["votes"] == 2
