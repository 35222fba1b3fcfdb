"""Soak: many comparisons through the API, the server's resident memory sampled as they go.

    python benchmarks/bench_soak.py                      # 1,000 comparisons of the five shipped models
    python benchmarks/bench_soak.py --comparisons 200 --models longest-3,mini-instruct

Starts `python app.py` in a subprocess (offline, its own votes database and temporary folder, on
127.0.0.1), sends comparisons one after another through gradio_client as docs/app.md shows (each
a different dialogue, so nothing is served from a cache), and reads the server's RSS every
`--every` comparisons. Prints the growth over the last half of the run (the first half warms up
allocators and caches) and, last, the per-comparison growth. Also checks that every comparison
finished on every card, and that the temporary folder is gone after SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "mini-original,mini-instruct,mini-lora,mini-prompt,longest-3"
NAMES = ["Amanda", "Ben", "Chloe", "Dmitri", "Esra", "Farid", "Gwen", "Hiro"]
THINGS = ["tickets", "the report", "a cake", "the keys", "two chairs", "the slides", "lunch", "a taxi"]


def dialogue(i: int) -> str:
    """A different small chat each time (our own text), so no two requests are the same."""
    a, b = NAMES[i % len(NAMES)], NAMES[(i * 3 + 1) % len(NAMES)]
    thing, hour = THINGS[(i * 5) % len(THINGS)], 8 + i % 10
    return (f"{a}: Hi {b}, can you bring {thing} tomorrow at {hour}?\n"
            f"{b}: Sure, {hour} works. Should I bring anything else? (request {i})\n"
            f"{a}: No, just {thing}. Thank you!\n{b}: See you at {hour} then.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, folder: Path, models: str) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TMPDIR": str(folder),
           "STUDIO_VOTES_DB": str(folder / "votes.sqlite3"), "STUDIO_WARMUP": models,
           "GRADIO_ANALYTICS_ENABLED": "False"}
    log = (folder / "server.log").open("w")
    return subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def connect(url: str, server: subprocess.Popen, timeout: float = 180):
    from gradio_client import Client
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before it served")
        try:
            return Client(url, verbose=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def soak(client, server_pid: int, n: int, models: list[str], every: int) -> list[tuple[int, float]]:
    import psutil
    process = psutil.Process(server_pid)
    samples = [(0, process.memory_info().rss / 2**20)]
    failed = 0
    started = time.perf_counter()
    for i in range(1, n + 1):
        *_, results, _notes = client.predict(dialogue=dialogue(i), models=models, max_new_tokens=40,
                                             api_name="/compare")
        failed += sum(1 for m in results["models"] if m["error"] or m["summary"] is None)
        if i % every == 0 or i == n:
            samples.append((i, process.memory_info().rss / 2**20))
            rate = i / (time.perf_counter() - started)
            print(f"{i:5d} comparisons  RSS {samples[-1][1]:8.1f} MiB  ({rate:.2f}/s)", file=sys.stderr, flush=True)
    if failed:
        raise SystemExit(f"{failed} card(s) without a summary")
    return samples


def report(samples: list[tuple[int, float]]) -> float:
    n = samples[-1][0]
    half = min(samples, key=lambda s: abs(s[0] - n / 2))
    last = samples[-1]
    growth = (last[1] - half[1]) / half[1]
    print(f"RSS after warm-up (comparison {half[0]}): {half[1]:.1f} MiB; at the end ({last[0]}): {last[1]:.1f} MiB")
    print(f"peak {max(s[1] for s in samples):.1f} MiB; first sample {samples[0][1]:.1f} MiB")
    per = (last[1] - half[1]) / max(1, last[0] - half[0]) * 1024
    print(f"growth over the last {last[0] - half[0]} comparisons: {growth * 100:+.2f}% ({per:+.1f} KiB per comparison)")
    return growth


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=1000)
    parser.add_argument("--models", default=SHIPPED)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="soak-") as name:
        folder = Path(name)
        port = free_port()
        server = start_server(port, folder, args.models)
        try:
            client = connect(f"http://127.0.0.1:{port}/", server)
            samples = soak(client, server.pid, args.comparisons, models, args.every)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                print("the server did not exit within 15 s of SIGTERM")
        left = sorted(p.name for p in folder.glob("dialogsum-studio-*"))
        print(f"after SIGTERM: exit code {server.returncode}, temporary folders left: {left or 'none'}")
        return report(samples)


if __name__ == "__main__":
    main()
