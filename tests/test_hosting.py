"""Hosting: the device models go to, the GPU call around each decode and its duration, the queue,
and the requirements that resolve on ZeroGPU and locally."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from summarizer import hosting
from summarizer.generation import DecodingSettings

ROOT = Path(__file__).resolve().parent.parent
ZERO_GPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")  # huggingface/hub-docs spaces-zerogpu.md


def test_model_device_follows_the_host():
    assert hosting.model_device({"SPACES_ZERO_GPU": "true"}) == "cuda"  # at start-up, as ZeroGPU wants
    assert hosting.model_device({"SUMMARIZER_DEVICE": "cpu", "SPACES_ZERO_GPU": "1"}) == "cpu"
    import torch
    assert hosting.model_device({}) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_decode_duration_grows_with_the_request_and_stays_within_bounds():
    short = hosting.decode_seconds(rows=5, max_new_tokens=64)
    assert hosting.MIN_DURATION_S <= short < 60  # shorter than ZeroGPU's default: a better queue place
    assert hosting.decode_seconds(5, 256) > short
    assert hosting.decode_seconds(5, 256, num_beams=4) > hosting.decode_seconds(5, 256)
    assert hosting.decode_seconds(200, 256) > hosting.decode_seconds(5, 256)
    assert hosting.decode_seconds(10_000, 10_000, 8) == hosting.MAX_DURATION_S
    assert hosting.decode_seconds(1, 1) == hosting.MIN_DURATION_S


def test_each_decode_is_a_gpu_call_with_its_own_duration(monkeypatch):
    """With `spaces` importable (as on a Space), the decode is wrapped by spaces.GPU with a
    duration callable that reads the request's own arguments."""
    wrapped = {}

    def gpu(duration=60):
        def wrap(fn):
            wrapped["fn"], wrapped["duration"] = fn, duration
            return fn
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))

    def decode(backbone_id, prompts, adapters, soft_prompt, decoding, stream):
        return prompts

    assert hosting.gpu_task(decode) is decode and wrapped["fn"] is decode
    request = (1, ["p"] * 5, ["a"] * 5, None, DecodingSettings(max_new_tokens=200, num_beams=2), None)
    assert wrapped["duration"](*request) == hosting.decode_seconds(5, 200, 2)
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: the function itself
    assert hosting.gpu_task(decode) is decode


def test_queue_is_sized_for_the_host(monkeypatch):
    assert hosting.queue_plan({}) == hosting.QueuePlan(concurrency=1, max_size=16)
    zero = hosting.queue_plan({"SPACES_ZERO_GPU": "true"})
    assert zero.max_size > 16 and zero.concurrency >= 1
    assert hosting.queue_plan({"STUDIO_QUEUE_SIZE": "3"}).max_size == 3


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*?)\s*(#.*)?$", line.strip())
        if found and not line.startswith(("-", "#")):
            pins[found.group(1).lower()] = found.group(2)
    return pins


def test_requirements_admit_a_zero_gpu_torch_and_dev_pins_the_local_cpu_one():
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(_pins(ROOT / "requirements.txt")["torch"])
    assert all(version in spec for version in ZERO_GPU_TORCH), spec
    assert "2.13.0" in spec  # and the local CPU wheel
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev and _pins(ROOT / "requirements-dev.txt")["torch"] == "==2.13.0"
