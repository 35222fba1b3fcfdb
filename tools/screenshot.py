"""README's picture (a tool beside the app, not part of the UI package): the app as a fresh clone opens it, comparing the shipped models.

    python -m tools.screenshot [--output assets/screenshot.png]   # from the repository root

Serves the app on a free local port with the default registry (models.toml: the miniature
models load from assets/mini/, nothing from the network), keeps the sample conversation the page
opens on, runs the pre-selected models zero-shot with the names shown, and saves a full-page
screenshot once every card is done. Needs Debian's chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Captured(NamedTuple):
    notes: str  # the run's notes line, e.g. "4 of 4 model(s) finished"
    cards: list[tuple[str, str]]  # (model, summary) per card, in page order


def capture(url: str, output: Path, chromium: str, timeout_ms: int = 180_000) -> Captured:
    """Compare on the page at `url` and save the screenshot; returns what the page showed."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            expect(page.locator("#models")).to_contain_text("longest-3 · ready", timeout=60_000)
            expect(page.locator("#blind input")).to_be_checked(timeout=15_000)
            page.locator("#blind input").uncheck()  # the picture shows which model wrote what
            page.locator("#run").click()
            expect(page.locator("#notes")).to_contain_text("model(s) finished", timeout=timeout_ms)
            expect(page.locator("#rouge-chart img")).to_be_visible(timeout=30_000)
            cards = page.locator("#cards .ds-card")
            shown = Captured(page.locator("#notes").inner_text(),
                             [(cards.nth(i).get_attribute("data-model"),
                               cards.nth(i).locator(".ds-summary").inner_text().strip())
                              for i in range(cards.count())])
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(500)
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output), full_page=True)
            return shown
        finally:
            browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "assets" / "screenshot.png"))
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("error: chromium is not installed (apt-get install chromium)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("STUDIO_VOTES_DB", str(ROOT / "data" / "screenshot-votes.sqlite3"))
    import app  # run as a module from the repository root, where app.py is

    demo = app.build_app()
    port = _free_port()
    try:
        app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        shown = capture(f"http://127.0.0.1:{port}/", Path(args.output), chromium)
    finally:
        demo.close()
    print(f"wrote {args.output} ({', '.join(model for model, _ in shown.cards)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
