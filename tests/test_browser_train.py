"""The Train tab in headless Chromium: start a short job, reload the page and find it still
running, stop it; a finished job's model appears in Compare's list. Tiny models of conftest.py."""

from __future__ import annotations

import re

import pytest

from test_browser import CHROMIUM
from test_train_api import train_app  # noqa: F401  (the app with its own jobs folder)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


def _start(page, name: str, steps: int) -> str:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-name input, #train-name textarea").first.fill(name)
    steps_box = page.locator("#train-steps input")
    steps_box.fill(str(steps))
    page.locator("#train-start").click()
    job = page.locator("#train-job-id input, #train-job-id textarea").first
    expect(job).not_to_have_value("", timeout=30_000)
    return job.input_value()


def _step(page) -> int:
    match = re.search(r"step (\d+) of", page.locator("#train-status").inner_text())
    return int(match.group(1)) if match else -1


def test_start_reload_stop_and_a_finished_model_in_compare(train_app):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(train_app)
            job = _start(page, "browser-long", 2000)
            expect(page.locator("#train-status")).to_contain_text("Training", timeout=60_000)
            expect(page.locator("#train-loss")).to_be_visible()
            # a reload (here: the job's link) finds the job again, still progressing
            page.goto(f"{train_app}?job={job}")
            page.get_by_role("tab", name="Train").click()
            expect(page.locator("#train-status")).to_contain_text("Training", timeout=30_000)
            first = _step(page)
            page.wait_for_function(
                f"() => {{ const m = document.querySelector('#train-status').innerText.match(/step (\\d+) of/);"
                f" return m && Number(m[1]) > {first}; }}", timeout=60_000)
            page.locator("#train-stop").click()
            expect(page.locator("#train-status")).to_contain_text("Stopped", timeout=60_000)

            _start(page, "browser-done", 4)
            expect(page.locator("#train-status")).to_contain_text("Done", timeout=120_000)
            page.get_by_role("tab", name="Compare").click()
            expect(page.locator("#models")).to_contain_text("browser-done", timeout=30_000)
        finally:
            browser.close()
