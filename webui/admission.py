"""Admission for model runs (/compare, /batch, /summarize): `running` at once, `waiting` more
wait their turn, and past that a one-line "busy" refusal, at once.

Why not Gradio's own queue limit (`demo.queue(max_size=...)`): it counts every waiting event of
every kind, and gradio_client always joins the queue (whatever `queue=False` says), so a vote
sent while comparisons filled the queue was refused "Queue is full!". The queue now has no size
limit, quick events (votes, examples) never wait behind model runs, and this counter bounds the
model runs alone.

A model run is registered with `admitted(fn)` and `**MODEL_RUN`: Gradio starts it at once (no
concurrency limit in Gradio), the wrapper admits it or refuses it, then waits for a turn on an
asyncio semaphore (a waiting run holds no thread) and runs `fn` in a worker thread. A run that
is refused, fails, or whose client goes away gives its place back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import weakref

import anyio
import gradio as gr
from gradio.context import Context

# The events' settings: Gradio runs them at once; the Admission decides who waits.
MODEL_RUN = dict(concurrency_id="models", concurrency_limit=None)
BUSY = ("The Studio is busy: {admitted} model requests are running or waiting, the most it takes. "
        "Please try again in a minute.")
DEFAULT_RUNNING, DEFAULT_WAITING = 1, 16

_DONE = object()


class Admission:
    """`running` model runs at once and `waiting` more in line; past that, refused."""

    def __init__(self, running: int = DEFAULT_RUNNING, waiting: int = DEFAULT_WAITING):
        if running < 1 or waiting < 0:
            raise ValueError(f"running must be at least 1 and waiting at least 0, got {running}, {waiting}")
        self.running, self.waiting = running, waiting
        self.admitted = 0  # running + waiting now; changed on the event loop only
        self._turns: asyncio.Semaphore | None = None  # made on the server's loop, at the first run

    @property
    def capacity(self) -> int:
        return self.running + self.waiting

    @contextlib.asynccontextmanager
    async def turn(self):
        """Admit (or refuse with a one-line gr.Error), then wait for a free turn."""
        if self.admitted >= self.capacity:
            raise gr.Error(BUSY.format(admitted=self.admitted), print_exception=False)
        self.admitted += 1
        try:
            if self._turns is None:
                self._turns = asyncio.Semaphore(self.running)
            async with self._turns:
                yield
        finally:
            self.admitted -= 1

    def __call__(self, fn):
        """`fn` (a function or a generator function) run under this admission. Its signature and
        docstring are kept (functools.wraps): Gradio reads the API's parameters from them."""
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            async def admitted_generator(*args, **kwargs):
                async with self.turn():
                    iterator = fn(*args, **kwargs)
                    try:
                        while (item := await anyio.to_thread.run_sync(_next, iterator)) is not _DONE:
                            yield item
                    finally:
                        iterator.close()
            return admitted_generator

        @functools.wraps(fn)
        async def admitted_call(*args, **kwargs):
            async with self.turn():
                return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        return admitted_call


def _next(iterator):
    return next(iterator, _DONE)


_BY_PAGE: "weakref.WeakKeyDictionary[gr.Blocks, Admission]" = weakref.WeakKeyDictionary()


def install(demo: gr.Blocks, running: int, waiting: int) -> Admission:
    """The admission every model run declared inside `demo` uses (call before the tabs)."""
    _BY_PAGE[demo] = Admission(running, waiting)
    return _BY_PAGE[demo]


def admitted(fn):
    """`fn` under the admission of the page being declared (a default one where none was
    installed, e.g. a tab built on its own)."""
    page = Context.root_block
    if page is None:
        return Admission()(fn)
    if page not in _BY_PAGE:
        _BY_PAGE[page] = Admission()
    return _BY_PAGE[page](fn)
