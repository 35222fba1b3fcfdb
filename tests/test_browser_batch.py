"""The Batch tab in headless Chromium: two prompt templates (a built-in one and one written on the
page) x two models over an uploaded CSV; the matrix, its "only where the summaries differ" filter,
and the HTML export downloaded and opened from disk (file://), offline."""

from __future__ import annotations

import csv

import pytest

from test_browser import CHROMIUM, browser_server  # noqa: F401  (the module's app on tiny models)
from summarizer.templates import custom_name

pytestmark = pytest.mark.browser

WRITTEN = "Tell me briefly what happens here:\n{dialogue}"
SCRIPT = "<script>alert(1)</script>"


def write_csv(path):
    rows = [{"id": "call", "dialogue": "#Person1#: Can you call me at six?\n#Person2#: Sure, I will call at six.",
             "summary": "#Person2# will call #Person1# at six."},
            {"id": "printer", "dialogue": "#Person1#: The printer is broken again.\n#Person2#: I will fix it today."},
            {"id": "hostile", "dialogue": f"#Person1#: {SCRIPT} look at this long line please\n#Person2#: no thanks",
             "summary": "<b>nothing</b> happens"}]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "dialogue", "summary"])
        writer.writeheader()
        writer.writerows(rows)
    return path


DIFFERING_ROWS = """matrix => [...matrix.querySelectorAll('tr.ds-row')].map(row => {
    const cells = [...row.querySelectorAll('td.ds-cell')]
        .map(c => (c.querySelector('.ds-summary') || c).textContent.trim());
    return [row.dataset.differs, new Set(cells).size > 1];
})"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_batch_matrix_with_two_templates_and_its_offline_export(browser_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    upload = write_csv(tmp_path / "dialogues.csv")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(browser_server)
            page.get_by_role("tab", name="Batch").click()
            page.locator("#upload input[type=file]").set_input_files(str(upload))
            expect(page.locator("#upload")).to_contain_text("dialogues.csv", timeout=15_000)
            expect(page.locator("#batch-models")).to_contain_text("broken · unavailable", timeout=30_000)
            page.locator("#batch-models").get_by_text("peft-lora", exact=False).first.click()  # untick
            page.locator("#batch-templates input").click()
            page.get_by_role("option", name="flan-briefly").click()
            page.locator("#batch-template-text textarea").fill(WRITTEN)
            page.locator("#batch-run").click()

            status = page.locator("#batch-status")
            expect(status).to_contain_text("Summarized 3 dialogue(s)", timeout=90_000)
            expect(status).to_contain_text(f"in 2 template(s) (flan-briefly, {custom_name(WRITTEN)})")
            matrix = page.locator("#batch-matrix .ds-matrix")
            expect(matrix.locator("tr.ds-row")).to_have_count(3, timeout=30_000)
            headers = matrix.locator("th.ds-col")
            expect(headers).to_have_count(4)
            columns = [(headers.nth(i).get_attribute("data-model"), headers.nth(i).get_attribute("data-template"))
                       for i in range(4)]
            templates = ("flan-briefly", custom_name(WRITTEN))
            assert columns == [(m, t) for m in ("original", "longest-3") for t in templates]
            expect(page.locator("#batch-summary")).to_contain_text(custom_name(WRITTEN))
            expect(matrix).to_contain_text(SCRIPT)  # the baseline copied the turn: shown, not run
            assert matrix.locator("script").count() == 0
            # Each row says whether its summaries differ, and says it truly.
            flags = matrix.evaluate(DIFFERING_ROWS)
            assert all((flag == "true") == differs for flag, differs in flags), flags
            differing = sum(1 for flag, _ in flags if flag == "true")

            matrix.screenshot(path=str(tmp_path / "page-matrix.png"))
            page.locator("#batch-differ input").check()
            expect(matrix.locator("tr.ds-row")).to_have_count(differing, timeout=15_000)
            expect(matrix.locator('tr.ds-row[data-differs="false"]')).to_have_count(0)
            expect(matrix.locator(".ds-caption")).to_contain_text("only where the summaries differ")
            page.locator("#batch-differ input").uncheck()
            expect(matrix.locator("tr.ds-row")).to_have_count(3, timeout=15_000)

            link = page.locator("#batch-html a[download]").first
            expect(link).to_be_visible(timeout=15_000)
            with page.expect_download() as download:
                link.click()
            saved = tmp_path / "matrix.html"
            download.value.save_as(saved)
            assert saved.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

            offline = browser.new_page(viewport={"width": 1200, "height": 900})
            requests = []
            offline.on("request", lambda request: requests.append(request.url))
            offline.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            offline.goto(saved.as_uri())
            exported = offline.locator(".ds-matrix")
            expect(exported.locator("tr.ds-row")).to_have_count(3)
            expect(exported.locator("th.ds-col")).to_have_count(4)
            expect(exported).to_contain_text(custom_name(WRITTEN))
            expect(exported).to_contain_text(SCRIPT)
            assert offline.locator("script").count() == 0
            # Styled by its own inline CSS: the header cells have the table's grey background.
            background = exported.locator("thead th").first.evaluate("th => getComputedStyle(th).backgroundColor")
            assert background == "rgb(246, 248, 250)", background
            assert [flag for flag, _ in offline.locator(".ds-matrix").evaluate(DIFFERING_ROWS)] == \
                [flag for flag, _ in flags]
            assert requests == [saved.as_uri()], requests  # nothing fetched beyond the file itself
            offline.screenshot(path=str(tmp_path / "matrix.png"), full_page=True)
            page.wait_for_timeout(300)
            assert dialogs == []
        finally:
            browser.close()
    assert (tmp_path / "matrix.png").stat().st_size > 5_000
