"""The Prompt lab in the app: templates x models as a grid, through gradio_client as docs/app.md
shows it, on the tiny models of conftest.py served on 127.0.0.1."""

from __future__ import annotations

import pytest

from test_reliability import DIALOGUE, assert_one_line_message, client, lab, served  # noqa: F401

LAB = "Dialogue:\n\n{dialogue}\n\nWhat was going on?"
BRACES = "Keep {__class__} {0} and {{x}} as text.\n{dialogue}\nSummary:"


def _compare(client, **kwargs):  # noqa: F811
    return client.predict(dialogue=DIALOGUE, max_new_tokens=8, api_name="/compare", **kwargs)


def test_two_templates_and_two_models_give_four_cards_each_with_its_template(client):  # noqa: F811
    cards_html, _, _, results, notes = _compare(client, models=["original", "peft-lora"],
                                                prompts=["experiment", BRACES])
    cards = results["models"]
    assert len(cards) == 4 and all(c["error"] is None for c in cards), cards
    custom = [c["template"] for c in cards if c["template"] != "experiment"]
    assert len(custom) == 2 and all(t.startswith("custom-") and len(t) == len("custom-") + 8 for t in custom)
    assert [(c["model"], c["template"] == "experiment") for c in cards] == [
        ("original", True), ("original", False), ("peft-lora", True), ("peft-lora", False)]
    assert results["templates"] == ["experiment", custom[0]]
    # every brace but {dialogue} reaches the model as typed
    for card in cards:
        if card["template"] != "experiment":
            assert "Keep {__class__} {0} and {{x}} as text." in card["prompt"]
            assert DIALOGUE.splitlines()[0] in card["prompt"]
    assert 'class="ds-cards ds-grid"' in cards_html and cards_html.count("ds-grid-head") == 2
    assert results["comparison_id"] is None and "one template" in notes


def test_a_written_template_in_the_box_is_a_column(client):  # noqa: F811
    *_, results, _ = _compare(client, models=["longest-3"], prompts=["experiment"], written_prompt=LAB)
    assert [c["template"] for c in results["models"]] == ["experiment", "lab-going-on"]  # the lab's text is built in


def test_one_template_keeps_the_single_row_and_the_vote(client):  # noqa: F811
    *_, results, _ = _compare(client, models=["original", "longest-3"], prompts=["lab-going-on"])
    assert [c["template"] for c in results["models"]] == ["lab-going-on", "lab-going-on"]
    assert results["templates"] == [] and results["comparison_id"]
    assert "What was going on?" in results["models"][0]["prompt"]


@pytest.mark.parametrize("prompts, fragment", [
    (["Summarize this."], "{dialogue}"),
    (["{dialogue} and again {dialogue}"], "{dialogue}"),
    (["x" * 2100 + "{dialogue}"], "2000"),
    (["experiment", "lab-going-on", "flan-briefly", "dialogue-only"], "at most 3 templates"),
])
def test_bad_templates_are_refused_in_one_line(client, prompts, fragment):  # noqa: F811
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        _compare(client, models=["longest-3"], prompts=prompts)
    assert_one_line_message(caught.value)
    assert fragment.replace(",", "") in str(caught.value).replace(",", ""), str(caught.value)
