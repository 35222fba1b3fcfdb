"""SIGTERM, the way Spaces and containers stop a process: `python app.py` exits within 10 s,
normally, and leaves no temporary folder (dialogsum-studio-*) behind. Checked while it serves
(models loaded, a comparison done) and while it is still starting up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import write_registry, write_release_folder
from summarizer.studio.state import TEMP_PREFIX
from test_reliability import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DIALOGUE = "#Person1#: Are you coming tonight?\n#Person2#: Yes, I will be there at eight."


def start(tmp_path: Path, tiny_models, port: int) -> tuple[subprocess.Popen, Path]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "SUMMARIZER_REGISTRY": str(write_registry(tmp_path / "models.toml", tiny_models)),
           "DIALOGSUM_PATH": str(write_release_folder(tmp_path / "dialogsum")),
           "STUDIO_VOTES_DB": str(tmp_path / "votes.sqlite3"), "STUDIO_WARMUP": "original,peft-lora",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "TMPDIR": str(temp)}
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", str(ROOT / "app.py")], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, temp


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stop_and_check(process: subprocess.Popen, temp: Path) -> None:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack, for the failure message
        pytest.fail(f"still running 10 s after SIGTERM: {process.communicate()[0][-3000:]}")
    elapsed = time.monotonic() - started
    assert process.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not list(temp.glob(f"{TEMP_PREFIX}*")), "the Studio's folder outlived the process"
    print(f"\nSIGTERM to exit: {elapsed:.2f} s")


def test_sigterm_while_serving_exits_cleanly(tmp_path, tiny_models):
    from gradio_client import Client

    port = free_port()
    process, temp = start(tmp_path, tiny_models, port)
    try:
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            try:
                return Client(url, verbose=False) is not None
            except Exception:
                return False
        wait_for(up, process)
        assert len(list(temp.glob(f"{TEMP_PREFIX}*"))) == 1  # the folder the fix has to remove
        client = Client(url, verbose=False)
        results = client.predict(dialogue=DIALOGUE, models=["original", "longest-3"], max_new_tokens=8,
                                 api_name="/compare")[3]
        assert all(m["error"] is None for m in results["models"])
        client.submit(dialogue=DIALOGUE, models=["peft-lora"], max_new_tokens=64, api_name="/compare")
        time.sleep(0.2)  # one comparison still running when the signal comes: Gradio waits up to 5 s
        # for its open stream before the server thread is let go, so this exit takes about 5 s
        stop_and_check(process, temp)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_sigterm_while_starting_exits_cleanly(tmp_path, tiny_models):
    process, temp = start(tmp_path, tiny_models, free_port())
    try:
        wait_for(lambda: any(temp.glob(f"{TEMP_PREFIX}*")), process)  # the Studio exists, no server yet
        stop_and_check(process, temp)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
