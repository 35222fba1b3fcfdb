"""The GPU path, run for real: the app, evaluation and LoRA training on a CUDA GPU against the CPU.

    HF_HUB_OFFLINE=1 python benchmarks/gpu_check.py --data ../shared/data/dialogsum   # on a GPU
    HF_HUB_OFFLINE=1 python benchmarks/gpu_check.py --device cpu --limit 5 --steps 5  # CPU half only

On a GPU it
1. starts the app (app.py's Blocks on 127.0.0.1) and runs /compare on the four mini models and
   longest-3, reporting each card's state;
2. runs `python -m summarizer evaluate` on the first --limit (100) test dialogues on the GPU and on
   the CPU (CUDA_VISIBLE_DEVICES=""), and reports how many summaries are identical;
3. trains `python -m training lora` for --steps (300) steps on the GPU (bf16 where supported,
   which training/run.py picks) and on the CPU, and reports steps/s of each and the ratio.
It prints one JSON report (date, GPU name, figures) for docs/hosting.md. Without a GPU it refuses
in one line, unless --device cpu asks for the CPU half alone (a check of the script itself).
Status: written and its CPU half run on a CPU machine; not yet run on a GPU (docs/hosting.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINI = ["mini-original", "mini-instruct", "mini-lora", "mini-prompt", "longest-3"]
DIALOGUE = ("#Person1#: Hello, I am Anna. I would like 3 books, please.\n"
            "#Person2#: Of course. Shall I bring them to the library?\n"
            "#Person1#: Yes, the library is fine. Thank you very much.")


def env_for(device: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # torch sees no GPU: the registry and the trainer use the CPU
        env["SUMMARIZER_DEVICE"] = "cpu"
    else:
        env["SUMMARIZER_DEVICE"] = "cuda"
    return env


def run(command: list[str], device: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env_for(device), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:4])} on {device} failed: "
                 f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return time.perf_counter() - started


def compare_in_app(device: str) -> dict:
    """The app in a child process on `device`, /compare over gradio_client."""
    script = (
        "import json, sys, app\nfrom gradio_client import Client\n"
        "demo = app.build_app(background=False)\n"
        "app.launch(demo, server_name='127.0.0.1', prevent_thread_lock=True, quiet=True)\n"
        "client = Client(demo.local_url, verbose=False)\n"
        f"out = client.predict(dialogue={DIALOGUE!r}, models={MINI!r}, max_new_tokens=32, api_name='/compare')\n"
        "print(json.dumps({m['model']: m['state'] for m in out[3]['models']}))\ndemo.close()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env_for(device), capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"error: the app on {device} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def evaluate(device: str, data: str, limit: int, out: Path) -> tuple[float, list[str]]:
    seconds = run([sys.executable, "-m", "summarizer", "evaluate", "--models", "mini-instruct,mini-lora",
                   "--split", "test", "--limit", str(limit), "--data", data, "--output", str(out)], device)
    results = json.loads(out.read_text())
    texts = [json.dumps(r, sort_keys=True) for r in _summaries(results)]
    return seconds, texts


def _summaries(results) -> list:
    """Every (model, dialogue id, summary) in an evaluate --output JSON, in a stable order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "summary" in node and isinstance(node.get("summary"), str):
                found.append([node.get("model"), node.get("id") or node.get("example_id"), node["summary"]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(results)
    return sorted(found, key=lambda r: (str(r[0]), str(r[1])))


def train(device: str, data: str, steps: int, folder: Path) -> float:
    seconds = run([sys.executable, "-m", "training", "lora", "--base", "assets/mini/mini-original", "--data", data,
                   "--output", str(folder), "--max-steps", str(steps), "--limit-eval", "0", "--quiet",
                   "--save-steps", str(10 * steps)], device)
    return steps / seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cuda: the full check (needs a GPU); cpu: the CPU half alone")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "dialogsum"))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    import torch

    devices = ["cpu"]
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("error: no CUDA GPU here (torch.cuda.is_available() is False); "
                     "run on a GPU machine, or --device cpu for the CPU half alone")
        devices = ["cuda", "cpu"]
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "gpu": torch.cuda.get_device_name(0) if "cuda" in devices else None,
              "torch": torch.__version__, "limit": args.limit, "steps": args.steps}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        scratch = Path(scratch)
        for device in devices:
            report[f"app_{device}"] = compare_in_app(device)
            seconds, texts = evaluate(device, args.data, args.limit, scratch / f"eval-{device}.json")
            report[f"evaluate_{device}_s"] = round(seconds, 1)
            report[f"_texts_{device}"] = texts
            report[f"lora_{device}_steps_per_s"] = round(train(device, args.data, args.steps, scratch / f"lora-{device}"), 3)
        if "cuda" in devices:
            gpu, cpu = report.pop("_texts_cuda"), report["_texts_cpu"]
            report["summaries"] = len(cpu)
            report["identical_summaries"] = sum(a == b for a, b in zip(gpu, cpu))
            report["lora_speedup_gpu_over_cpu"] = round(report["lora_cuda_steps_per_s"] / report["lora_cpu_steps_per_s"], 2)
        report["summaries"] = len(report.pop("_texts_cpu"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
