"""What every tab shares: UserError shown as a one-line message, and the quick events' settings."""

from __future__ import annotations

import contextlib

import gradio as gr

from summarizer.errors import UserError

# Quick events (examples, status, tables) run in their own group of 4, never behind a model run.
LIGHT = dict(concurrency_limit=4, concurrency_id="light")


@contextlib.contextmanager
def shown_to_user():
    """A UserError becomes a message box in the page (an AppError for API clients), no traceback."""
    try:
        yield
    except UserError as err:
        raise gr.Error(str(err), print_exception=False) from None
