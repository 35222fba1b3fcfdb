"""Where the app runs: a ZeroGPU Space, a CPU Space or a local machine (CPU or GPU).

Three things depend on it, and they live here so that the pipeline stays one path:
- the device models are placed on at load (`model_device`): on ZeroGPU that is `cuda` at start-up,
  outside any GPU call, where ZeroGPU's CUDA emulation takes the weights and moves them to the
  GPU it attaches for each call;
- the GPU call around each decode (`gpu_task`): `spaces.GPU` with a duration computed from the
  request (`decode_seconds`), since a shorter declared duration gets a better place in ZeroGPU's
  queue and counts less against the visitor's daily quota; anywhere else the function unchanged;
- the queue (`queue_plan`): how many requests run at once and how many may wait.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from . import settings

DEVICE_ENV = "SUMMARIZER_DEVICE"
ZERO_GPU_ENV = "SPACES_ZERO_GPU"  # set by ZeroGPU Spaces (and read by `spaces` itself)

# A decode's declared GPU time: start-up of the call plus a per-step cost. The per-step figure is
# a deliberately generous bound for the shipped mini models and FLAN-T5-base on a shared GPU
# slice (a batch decodes all its rows in one step); it is a budget, not a measurement.
CALL_OVERHEAD_S = 4.0
STEP_S = 0.03
ROWS_PER_STEP = 32  # rows decoded together in one step before the time grows
MIN_DURATION_S, MAX_DURATION_S = 5, 120  # ZeroGPU's default is 60 s; past 120 s the queue suffers


def on_zero_gpu(environ=os.environ) -> bool:
    return settings.flag(ZERO_GPU_ENV, environ)


def model_device(environ=os.environ) -> str:
    """$SUMMARIZER_DEVICE; else `cuda` on ZeroGPU (at start-up, as ZeroGPU wants) or when a GPU is
    there; else the CPU."""
    device = settings.text(DEVICE_ENV, environ)
    if device:
        return device
    if on_zero_gpu(environ):
        return "cuda"
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def decode_seconds(rows: int, max_new_tokens: int, num_beams: int = 1) -> int:
    """The GPU time to ask for one batch of `rows` prompts: grows with the steps decoded
    (max_new_tokens), the beams and the rows past one step's worth; clamped to 5..120 s."""
    steps = max(1, int(max_new_tokens)) * (1 + 0.5 * (max(1, int(num_beams)) - 1))
    waves = math.ceil(max(1, int(rows)) / ROWS_PER_STEP)
    seconds = CALL_OVERHEAD_S + STEP_S * steps * waves
    return int(min(MAX_DURATION_S, max(MIN_DURATION_S, math.ceil(seconds))))


def _decode_duration(backbone_id, prompts, adapters, soft_prompt, decoding, stream) -> int:
    """spaces.GPU's `duration` callable: it gets the decode's own arguments."""
    return decode_seconds(len(prompts), decoding.max_new_tokens, decoding.num_beams)


def gpu_task(function):
    """`function` run inside a ZeroGPU GPU call when the `spaces` package is there (it is on
    Spaces; `spaces.GPU` is a no-op off ZeroGPU), with the duration of each call computed from
    its request; elsewhere `function` itself. Imported before any model touches CUDA."""
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(duration=_decode_duration)(function)


@dataclass(frozen=True)
class QueuePlan:
    concurrency: int  # model requests running at once
    max_size: int  # requests that may wait; past it Gradio answers "busy, try again"


def queue_plan(environ=os.environ) -> QueuePlan:
    """CPU: one request at a time (two cores: one generation at a time is fastest for everyone),
    16 waiting. ZeroGPU: each request is a short GPU call (decode_seconds), so more may wait
    (64), and two run at once (one tokenizes and renders on the CPU while the other decodes).
    $STUDIO_QUEUE_SIZE overrides the waiting size."""
    zero = on_zero_gpu(environ)
    size = settings.number("STUDIO_QUEUE_SIZE", environ, minimum=1)
    return QueuePlan(concurrency=2 if zero else 1, max_size=size if size else (64 if zero else 16))
