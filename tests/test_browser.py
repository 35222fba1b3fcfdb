"""DialogSum Studio in headless Chromium: paste, choose few-shot, run, see three cards and the chart;
vote blind, see the names revealed and the leaderboard.

Drives Debian's chromium through Playwright (Playwright's own browser download is not needed).
Screenshots go to the test's temporary folder; README's picture is made by `python -m
tools.screenshot`, with the shipped models.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import write_registry, write_release_folder
from test_app import add_broken_model, running_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and Path("/usr/bin/chromium").exists():
    CHROMIUM = "/usr/bin/chromium"

from webui.components.compare import SAMPLE_DIALOGUE as DIALOGUE, SAMPLE_REFERENCE as REFERENCE

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("browser")
    registry = add_broken_model(write_registry(root / "models.toml", tiny_models))
    data = write_release_folder(root / "dialogsum")
    with running_app(registry, data, votes=root / "votes.sqlite3") as (demo, url):
        yield url


def names_shown(page) -> None:
    """Blind is on when the page has loaded; these tests look at the named cards."""
    from playwright.sync_api import expect

    expect(page.locator("#blind input")).to_be_checked(timeout=15_000)
    page.locator("#blind input").uncheck()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_compare_in_the_browser(browser_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(browser_server)
            # Model checkboxes carry each model's status once the background check is done.
            expect(page.locator("#models")).to_contain_text("broken · unavailable", timeout=30_000)
            expect(page.locator("#models")).to_contain_text("longest-3 · ready")

            names_shown(page)
            # The page opens on the sample conversation, one click from a comparison.
            expect(page.locator("#dialogue textarea")).to_have_value(DIALOGUE)
            expect(page.locator("#reference textarea")).to_have_value(REFERENCE)
            page.locator("#shot-mode").get_by_text("few-shot", exact=True).click()
            page.locator("#run").click()

            cards = page.locator("#cards .ds-card")
            expect(cards).to_have_count(3, timeout=60_000)
            expect(page.locator('#cards .ds-card[data-state="done"]')).to_have_count(3, timeout=60_000)
            expect(page.locator("#notes")).to_contain_text("3 of 3 model(s) finished", timeout=30_000)
            names = [cards.nth(i).get_attribute("data-model") for i in range(3)]
            assert names == ["original", "peft-lora", "longest-3"]
            for i in range(3):
                expect(cards.nth(i).locator(".ds-rouge")).to_contain_text("ROUGE-1")
                expect(cards.nth(i).locator(".ds-prompt summary")).to_contain_text("shots: train_")
            # The longest-3 baseline copies turns, so it shares words with the reference.
            expect(cards.nth(2).locator("mark").first).to_be_visible()
            # The random-weight "original" writes words the dialogue never says: marked unsupported,
            # underlined, not highlighted like the shared words.
            unsupported = cards.nth(0).locator(".ds-summary mark.unsupported")
            expect(unsupported.first).to_be_visible()
            style = unsupported.first.evaluate(
                "m => [getComputedStyle(m).textDecorationLine, getComputedStyle(m).backgroundColor]")
            assert "underline" in style[0] and style[1] in ("rgba(0, 0, 0, 0)", "transparent"), style
            expect(cards.nth(0).locator(".ds-rouge")).to_contain_text("support")
            chart = page.locator("#rouge-chart img")
            expect(chart).to_be_visible(timeout=30_000)
            assert chart.evaluate("img => img.naturalWidth") > 100
            expect(page.locator("#rouge-table")).to_contain_text("peft-lora")

            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "compare.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_script_in_a_dialogue_is_shown_not_run(browser_server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(browser_server)
            names_shown(page)
            page.locator("#dialogue textarea").fill(
                "#Person1#: <img src=x onerror=alert(1)> look at this picture please\n"
                "#Person2#: <script>alert(2)</script> that is a very nice picture indeed")
            page.locator("#models").get_by_text("original", exact=False).first.click()  # untick
            page.locator("#models").get_by_text("peft-lora", exact=False).first.click()  # untick
            page.locator("#run").click()
            card = page.locator('#cards .ds-card[data-model="longest-3"][data-state="done"]')
            expect(card).to_be_visible(timeout=30_000)
            expect(card.locator(".ds-summary")).to_contain_text("<script>alert(2)</script>")
            assert card.locator("img").count() == 0 and card.locator("script").count() == 0
            page.wait_for_timeout(500)
            assert dialogs == []
        finally:
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_blind_vote_reveals_the_names_and_reaches_the_leaderboard(browser_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    models = ["original", "peft-lora", "longest-3"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(browser_server)
            expect(page.locator("#blind input")).to_be_checked(timeout=15_000)  # blind by default
            page.locator("#dialogue textarea").fill(DIALOGUE)
            page.locator("#reference textarea").fill(REFERENCE)
            page.locator("#run").click()

            cards = page.locator("#cards .ds-card")
            expect(page.locator('#cards .ds-card[data-state="done"]')).to_have_count(3, timeout=60_000)
            assert page.locator("#cards .ds-card[data-model]").count() == 0
            assert [cards.nth(i).get_attribute("data-card") for i in range(3)] == ["A", "B", "C"]
            hidden = page.locator("#cards").inner_text() + page.locator("#notes").inner_text()
            assert not [name for name in models if name in hidden], hidden
            assert "ROUGE-1" not in hidden and "Prompt sent" not in hidden
            expect(page.locator("#rouge-table")).not_to_contain_text("peft-lora")

            expect(page.locator("#vote-panel")).to_be_visible(timeout=15_000)
            page.locator("#vote-choice").get_by_text("B", exact=True).click()
            page.locator("#vote").click()
            expect(page.locator("#vote-status")).to_contain_text("Vote stored", timeout=15_000)
            expect(page.locator("#cards .ds-card[data-model]")).to_have_count(3)
            picked = page.locator('#cards .ds-card[data-picked="true"]')
            expect(picked).to_have_count(1)
            assert picked.get_attribute("data-card") == "B"
            winner = picked.get_attribute("data-model")
            assert winner in models
            expect(picked).to_contain_text(winner)
            expect(page.locator("#vote-status")).to_contain_text(f"B: {winner}")
            expect(page.locator("#rouge-table")).to_contain_text("peft-lora")
            expect(page.locator("#vote")).to_be_disabled()

            page.get_by_role("tab", name="Leaderboard").click()
            expect(page.locator("#board-note")).to_contain_text("1 vote(s)", timeout=15_000)
            expect(page.locator("#board-table")).to_contain_text(winner)
            expect(page.locator("#board-chart img")).to_be_visible(timeout=15_000)
            page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
            assert dialogs == []
        finally:
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_batch_and_benchmark_tabs(browser_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    upload = tmp_path / "dialogues.jsonl"
    upload.write_text(
        '{"id": "a1<img src=x onerror=alert(3)>", "dialogue": "#Person1#: Can you call me at six?\\n#Person2#: Sure, at six.", '
        '"summary": "#Person2# will call #Person1# at six."}\n'
        '{"id": "a2", "dialogue": "#Person1#: The printer is broken again.\\n#Person2#: I will fix it."}\n',
        encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(browser_server)
            page.get_by_role("tab", name="Batch").click()
            page.locator("#upload input[type=file]").set_input_files(str(upload))
            expect(page.locator("#upload")).to_contain_text("dialogues.jsonl", timeout=15_000)
            page.locator("#batch-run").click()
            expect(page.locator("#batch-status")).to_contain_text("Summarized 2 dialogue(s)", timeout=60_000)
            expect(page.locator("#batch-file a[download]").first).to_be_visible()
            expect(page.locator("#batch-summary")).to_contain_text("longest-3")
            expect(page.locator("#batch-rows")).to_contain_text("a1<img src=x onerror=alert(3)>")
            page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)

            page.get_by_role("tab", name="Benchmark").click()
            expect(page.locator("#bench-table")).to_contain_text("course lab (published)", timeout=15_000)
            expect(page.locator("#bench-table")).to_contain_text("0.4216")
            expect(page.locator("#bench-chart img")).to_be_visible(timeout=15_000)
            page.screenshot(path=str(tmp_path / "benchmark.png"), full_page=True)
            assert dialogs == []
        finally:
            browser.close()


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("mini-original", "mini-instruct", "mini-lora")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(not all((ROOT / "assets" / "mini" / m).is_dir() for m in SHIPPED),
                    reason="the miniature experiment's models are not all in assets/mini yet")
def test_a_fresh_clone_compares_the_shipped_models(tmp_path, monkeypatch):
    """The repository's own models.toml, offline: the page pre-selects the mini models and
    longest-3, and each of them writes a summary of the sample conversation. Driven by
    `tools.screenshot.capture`, the code that makes README's picture."""
    from tools.screenshot import capture

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STUDIO_WARMUP", raising=False)
    data = write_release_folder(tmp_path / "dialogsum")
    with running_app(ROOT / "models.toml", data, results=ROOT / "assets" / "mini" / "results.json",
                     votes=tmp_path / "votes.sqlite3") as (demo, url):
        shown = capture(url, tmp_path / "shipped.png", CHROMIUM, timeout_ms=120_000)
    assert "4 of 4 model(s) finished" in shown.notes
    names = [model for model, _ in shown.cards]
    assert names == [*SHIPPED, "longest-3"]
    summaries = [summary for _, summary in shown.cards]
    assert all(len(s.split()) >= 3 for s in summaries), summaries
    # The fine-tuned model writes its own sentence, not the pre-trained model's.
    assert summaries[1] != summaries[0]
    assert (tmp_path / "shipped.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_prompt_lab_grid_with_a_written_template(browser_server, tmp_path):
    """Choose a built-in template, write one in the box: the cards become a grid, rows models and
    columns templates, each card naming its template, the written one's braces kept as text."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(browser_server)
            names_shown(page)
            expect(page.locator("#models")).to_contain_text("longest-3 · ready", timeout=30_000)
            page.locator("#models").get_by_text("peft-lora", exact=False).first.click()  # untick
            page.get_by_text("Prompt templates", exact=False).first.click()  # open the lab
            page.locator("#prompts input").click()
            page.locator("#prompts input").fill("experiment")
            page.keyboard.press("Enter")
            page.locator("#written-prompt textarea").fill("Chat {0}:\n{dialogue}\nWhat happened?")
            page.locator("#run").click()
            grid = page.locator("#cards .ds-cards.ds-grid")
            expect(grid).to_be_visible(timeout=60_000)
            expect(page.locator('#cards .ds-card[data-state="done"]')).to_have_count(4, timeout=60_000)
            heads = page.locator("#cards .ds-grid-head")
            assert heads.count() == 2 and heads.nth(0).inner_text() == "experiment"
            assert heads.nth(1).inner_text().startswith("custom-")
            cards = page.locator("#cards .ds-card")
            pairs = [(cards.nth(i).get_attribute("data-model"), cards.nth(i).get_attribute("data-template"))
                     for i in range(4)]
            assert [m for m, _ in pairs] == ["original", "original", "longest-3", "longest-3"], pairs
            assert pairs[0][1] == "experiment" and pairs[1][1].startswith("custom-"), pairs
            # two columns side by side: the second card sits to the right of the first, on its row
            first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
            assert second["x"] > first["x"] + first["width"] / 2 and abs(second["y"] - first["y"]) < 5
            cards.nth(1).locator(".ds-prompt summary").click()
            expect(cards.nth(1).locator(".ds-prompt pre")).to_contain_text("Chat {0}:")
            page.screenshot(path=str(tmp_path / "grid.png"), full_page=True)
        finally:
            browser.close()
