"""Hostile calls to the running app through gradio_client, as docs/app.md shows it: each gets a
one-line refusal or a normal answer, no card shows internal error text, and the server still
serves afterwards. Runs the real app on 127.0.0.1 with the tiny models of conftest.py."""

from __future__ import annotations

import random
import re

import pytest

from test_reliability import (DIALOGUE, THREE, assert_normal_request_works, assert_one_line_message, client,  # noqa: F401
                              lab, served)

INTERNAL = re.compile(r"Traceback|File \"|NoneType|has no attribute|object is not|KeyError|IndexError|"
                      r"TypeError|ValueError|sqlite3\.|line \d+|/work/|site-packages")


def _speakers(n: int) -> str:
    return "\n".join(f"Speaker{i}: I am number {i} and I will bring item {i}." for i in range(n))


def _random_text(seed: int = 7) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x400, 0x4ff), 0x0a]))
                   for _ in range(1500))


# (endpoint, arguments, outcome): /compare gets fast decoding unless it sets its own numbers;
# outcome: a one-line refusal, or an answer (a summary on every card it could run).
CALLS = [
    ("/compare", dict(dialogue=""), "refused"),
    ("/compare", dict(dialogue="#Person1#: " + "word " * 40_000), "refused"),  # 200,000 characters
    ("/compare", dict(dialogue="#Person1#: a\x00b \u202eevil\u202c \u200fmark\n#Person2#: \u2066ok\u2069"), "answered"),
    ("/compare", dict(dialogue=_random_text()), "answered"),
    ("/compare", dict(models=["/etc/passwd"]), "refused"),
    ("/compare", dict(models=["longest-3"] * 50), "answered"),
    ("/compare", dict(max_new_tokens=10**9), "refused"),
    ("/compare", dict(num_beams=-3), "refused"),
    ("/compare", dict(max_prompt_tokens=10**12), "refused"),
    ("/compare", dict(temperature=-1.0, do_sample=True), "refused"),
    ("/compare", dict(dialogue=_speakers(1000)[:19_000], models=["longest-3", "original"]), "answered"),
    ("/compare", dict(dialogue=_speakers(300)[:19_000], models=["longest-3", "original"]), "answered"),
    ("/compare", dict(dialogue="#Person2#: hi, I am Bob\nBob: no, #Person2# is me\n#Person1#: who is who?"), "answered"),
    ("/compare", dict(dialogue="\n".join(f"P{i % 7}: ok" for i in range(5000))), "refused"),
    ("/compare", dict(dialogue="\n".join("a: b" for _ in range(3000))), "answered"),
    ("/summarize", dict(dialogue=""), "refused"),
    ("/summarize", dict(dialogue=DIALOGUE, model="../../etc/passwd"), "refused"),
    ("/summarize", dict(dialogue=DIALOGUE, model="longest-3", max_new_tokens=-5), "refused"),
    ("/summarize", dict(dialogue="x" * 200_000, model="longest-3"), "refused"),
    ("/vote", dict(comparison_id="1' OR '1'='1", choice="A"), "refused"),
    ("/vote", dict(comparison_id="'; DROP TABLE votes; --", choice="B"), "refused"),
    ("/vote", dict(comparison_id="", choice=""), "refused"),
    ("/vote", dict(comparison_id="x" * 200_000, choice="tie"), "refused"),
    ("/load_example", dict(split="../../etc", how="random", index=0), "refused"),
    ("/load_example", dict(split="validation", how="index", index=10**12), "refused"),
    ("/load_example", dict(split="validation", how="'; DROP TABLE x; --", index=0), "refused"),
]


def _call(client, endpoint: str, arguments: dict):
    if endpoint == "/compare":
        arguments = {"dialogue": DIALOGUE, "models": THREE, "max_new_tokens": 8, **arguments}
    return client.predict(api_name=endpoint, **arguments)


def _assert_no_internal_text(answer) -> None:
    if isinstance(answer, tuple) and len(answer) == 5 and isinstance(answer[3], dict):  # /compare
        for card in answer[3].get("models", []):
            assert not INTERNAL.search(card.get("error") or ""), card["error"]
    assert "Traceback" not in str(answer)


def test_hostile_calls_get_an_answer_or_one_line_and_the_server_still_serves(client):  # noqa: F811
    from gradio_client.exceptions import AppError

    assert len(CALLS) >= 20
    outcomes = []
    for endpoint, arguments, _ in CALLS:
        try:
            answer = _call(client, endpoint, arguments)
        except AppError as err:
            assert_one_line_message(err)
            assert not INTERNAL.search(str(err)), (endpoint, str(err))
            outcomes.append("refused")
        else:
            _assert_no_internal_text(answer)
            outcomes.append("answered")
    assert outcomes == [expected for *_, expected in CALLS], list(zip([e for e, *_ in CALLS], outcomes))
    assert_normal_request_works(client)


@pytest.mark.parametrize("n", [300, 1000])
def test_many_speakers_summarize_on_every_card(client, n):  # noqa: F811
    *_, results, notes = _call(client, "/compare", dict(dialogue=_speakers(n)[:19_000],
                                                        models=["original", "longest-3"]))
    assert all(m["error"] is None and m["summary"] is not None for m in results["models"]), results["models"]
