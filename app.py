"""DialogSum Studio: compare summarization models side by side in the browser.

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT respected)

Ctrl+C and SIGTERM (how Spaces and containers stop it) both end it within seconds, leaving no
temporary folder behind.

The page is declared in `webui/` (one module per tab) and the work is done by `summarizer.studio`
(tested without a browser) and, for the Train tab, `training.jobs`. Configuration is server-side
only, by environment settings defined once in `summarizer/settings.py` (their table: the API tab
and docs/app.md): the registry, the data, the results file, warm-up, the wait line, votes, training
jobs, MCP (`--mcp` too).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys

import gradio as gr

from summarizer import settings
from summarizer.errors import UserError
from summarizer.hosting import queue_plan
from summarizer.studio import MAX_UPLOAD_BYTES, Studio
from webui import create_interface
from webui.style import CSS

HOSTING = queue_plan()  # CPU: 1 running, 16 waiting; ZeroGPU: 2 running, 64 waiting
QUEUE_SIZE = HOSTING.max_size


def _warm_models(studio: Studio) -> list[str]:
    value = settings.text("STUDIO_WARMUP")
    if value is None:
        return studio.models.default_models()
    if value.strip().lower() in ("", "none", "0", "no"):
        return []
    return [n.strip() for n in value.split(",") if n.strip() in studio.models.names()]


def build_app(studio: Studio | None = None, background: bool = True, queue_size: int = QUEUE_SIZE) -> gr.Blocks:
    """The app around `studio` (default: one configured from the environment), background work started."""
    studio = studio or Studio()
    if background:
        studio.models.start_background(warm=_warm_models(studio))
        studio.voting.start_sync()
    return create_interface(studio, queue_size, concurrency=HOSTING.concurrency)


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme and CSS (Gradio 6 takes them at launch)."""
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("theme", gr.themes.Soft())
    kwargs.setdefault("show_error", False)
    kwargs.setdefault("max_file_size", MAX_UPLOAD_BYTES)  # uploads past it are refused up front
    # Every admitted model run (running or waiting its turn, webui/admission.py) holds one of
    # Gradio's worker slots: leave Gradio's usual 40 free for everything else (votes above all).
    kwargs.setdefault("max_threads", 40 + QUEUE_SIZE + HOSTING.concurrency)
    return demo.launch(**kwargs)


MCP_ENV = "STUDIO_MCP"
MCP_MISSING = ('the MCP server needs the mcp package: pip install "gradio[mcp]==6.31.0" '
               f"(or unset {MCP_ENV} / drop --mcp)")


def mcp_requested(argv=None, environ=os.environ) -> bool:
    """--mcp on the command line or $STUDIO_MCP=1: off by default (the extra package is optional)."""
    argv = sys.argv[1:] if argv is None else argv
    return "--mcp" in argv or settings.flag(MCP_ENV, environ)


def check_mcp() -> None:
    """Raise UserError (one line) when the MCP server cannot start: `mcp` is not installed."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise UserError(MCP_MISSING) from None


def stop_on_sigterm() -> None:
    """SIGTERM (how Spaces, Docker and systemd stop a process) ends the app as Ctrl+C does.

    Python's default for SIGTERM is to die on the spot: no exit handlers, so the Studio's
    temporary folder (dialogsum-studio-*, removed by weakref.finalize at exit) was left behind,
    one per start. As KeyboardInterrupt in the main thread, Gradio's launch closes the server
    and returns, and the interpreter exits normally. Main thread only (signal's rule)."""
    def interrupt(signum, frame):
        logging.getLogger("app").info("SIGTERM: shutting down")
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def exit_now(code: int = 0) -> None:
    """Run the exit handlers (weakref.finalize removes the Studio's folder), then leave.

    Not through the interpreter's own shutdown: a model still loading or decoding in a daemon
    thread is frozen there, inside torch, and the final garbage collection then waited on it
    forever (seen: SIGTERM during the start-up warm-up, or during a comparison)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        mcp = mcp_requested()
        if mcp:
            check_mcp()
        demo = build_app()
    except UserError as err:  # e.g. a broken registry file: one line, no traceback
        sys.exit(f"error: {err}")
    launch(demo, mcp_server=mcp)


def run() -> None:
    """`python app.py`: serve until Ctrl+C or SIGTERM (Gradio's launch then closes the server
    and returns), and exit with nothing left behind."""
    stop_on_sigterm()  # before the Studio makes its folder
    try:
        main()
    except KeyboardInterrupt:  # stopped while starting, before the server blocks
        pass
    exit_now()


if __name__ == "__main__":
    run()
