"""Several processes on the CPU (torchrun, gloo): training, evaluation and their failures.

Every multi-process run here goes through the real launcher, `python -m torch.distributed.run`
(torchrun), except where a test needs each process's own exit code and output: torchrun reports
only the first failures it sees and stops the rest, so those tests start the two processes
themselves, with the environment torchrun gives its workers (RANK, WORLD_SIZE, MASTER_ADDR, ...).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("full", "lora", "prompt-tuning")
# The tiny pretrained base learns visibly at these rates (as in test_training.py).
OVERRIDES = {
    "full": ["--learning-rate", "3e-3"],
    "lora": ["--learning-rate", "1e-2", "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0.0"],
    "prompt-tuning": ["--learning-rate", "3e-1", "--num-virtual-tokens", "4"],
}
STEPS = 6


def _env() -> dict:
    # One thread per process: two processes share the two cores, and more threads only thrash.
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def _torchrun(*args: str, processes: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(processes), *args]


def _training_args(world, method: str, output: Path, *extra: str) -> list[str]:
    return [method, "--base", str(world["base"]), "--data", str(world["data"]), "--output", str(output),
            "--max-steps", str(STEPS), "--save-steps", "3", "--logging-steps", "1", "--limit-eval", "8",
            "--eval-max-new-tokens", "8", "--quiet", *OVERRIDES[method], *extra]


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    name = "model.safetensors" if (folder / "model.safetensors").is_file() else "adapter_model.safetensors"
    return load_file(folder / name)


def _initial_weights(world, method: str) -> dict:
    """The trainable weights as `train` starts from them: the base, or the adapter as wrapped
    with the run's seed (LoRA's A is random, B zero; the soft prompt is the instruction's text)."""
    if method == "full":
        return _weights(world["base"])
    from peft import get_peft_model_state_dict
    from transformers import set_seed

    from training.cli import build_parser
    from training.config import RunSettings, from_namespace
    from training.methods import METHODS as modules
    from training.run import load_base

    args = build_parser().parse_args(_training_args(world, method, world["root"] / "unused"))
    _, model = load_base(str(world["base"]))
    set_seed(from_namespace(RunSettings, args).seed)
    model = modules[method].wrap(model, from_namespace(modules[method].Config, args), str(world["base"]))
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def _distance(a: dict, b: dict) -> float:
    import torch

    keys = sorted(set(a) & set(b))
    assert keys
    return float(torch.sqrt(sum(((a[k].float() - b[k].float()) ** 2).sum() for k in keys)))


@pytest.mark.parametrize("method", METHODS)
def test_two_process_training_matches_one_process_and_writes_once(world, tmp_path, method, capsys):
    """torchrun with 2 processes x 4 examples trains the same weights as 1 process x 8 (the same
    global batch): the Trainer gives process k the k-th half of each step's examples, and
    `token_mean_loss` makes the gradient the mean over the global batch however it is split.

    Tolerance: not bit-equal, since float32 sums run in another order (each process pads its
    own rows, gradients are all-reduced) and Adam turns a relative error of 1e-7 in a near-zero
    gradient into a visible step. Measured: the two runs differ by 2e-7 to 2e-5 of the distance
    the weights travelled; splitting the same examples into other steps (1 process x 4) moves them
    0.3 to 0.7 of that distance. 1e-3 separates the two by orders of magnitude either way."""
    from training.cli import main

    registry = tmp_path / "models.toml"
    two = tmp_path / "two"
    started = time.monotonic()
    completed = subprocess.run(_torchrun("-m", "training", *_training_args(
        world, method, two, "--per-device-train-batch-size", "4", "--register", str(registry))),
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    print(f"2 processes: {time.monotonic() - started:.1f} s")

    # Printed once (the main process), one output folder, one card, one registry entry.
    assert completed.stdout.count("# wrote ") == 1 and completed.stdout.count("[models.two]") == 1
    assert completed.stderr.count("ROUGE: ") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.toml", "two", "two.checkpoints"]
    assert registry.read_text().count("[models.two]") == 1
    card = (two / "README.md").read_text()
    assert "on 2 processes (DDP)" in card and "of 8 examples" in card
    recorded = json.loads((two / "training_config.json").read_text())
    assert recorded["processes"] == 2 and recorded["global_step"] == STEPS
    assert recorded["rouge"]["n"] == 8  # the end-of-run evaluation, split over both processes
    # Each checkpoint marked complete once every process had saved: both RNG states are in it.
    for step in (3, 6):
        checkpoint = tmp_path / "two.checkpoints" / f"checkpoint-{step}"
        names = {p.name for p in checkpoint.iterdir()}
        assert {"checkpoint-complete.json", "rng_state_0.pth", "rng_state_1.pth"} <= names

    one = tmp_path / "one"
    assert main(_training_args(world, method, one, "--per-device-train-batch-size", "8",
                               "--limit-eval", "0")) == 0
    assert json.loads((one / "training_config.json").read_text())["processes"] == 1
    capsys.readouterr()

    start, single, double = _initial_weights(world, method), _weights(one), _weights(two)
    travelled = _distance(single, start)
    assert travelled > 0.05, travelled  # the weights did move
    assert _distance(double, single) <= 1e-3 * travelled, (_distance(double, single), travelled)


def _kill_rank(launcher: subprocess.Popen, rank: int) -> None:
    import psutil

    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "training" in child.cmdline():
                child.send_signal(signal.SIGKILL)
                return
        except psutil.Error:
            continue
    raise AssertionError(f"no process of rank {rank} under the launcher")


def test_sigkilled_rank_then_resume_finishes(world, tmp_path):
    """One process of a 2-process run is SIGKILLed (a lost machine): the launcher stops the run,
    nothing looks finished, and `--resume` under torchrun continues from the last checkpoint
    that every process had saved and finishes."""
    from training.checkpoints import checkpoint_dir, is_complete, latest_complete_checkpoint

    output, steps = tmp_path / "adapter", 80
    args = ["lora", "--base", str(world["base"]), "--data", str(world["data"]), "--output", str(output),
            "--max-steps", str(steps), "--save-steps", "20", "--limit-eval", "4",
            "--eval-max-new-tokens", "4", "--per-device-train-batch-size", "2", "--quiet",
            *OVERRIDES["lora"]]
    launcher = subprocess.Popen(_torchrun("-m", "training", *args), cwd=tmp_path, env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_after, deadline = None, time.monotonic() + 300
    while time.monotonic() < deadline and launcher.poll() is None:
        checkpoint = latest_complete_checkpoint(output)
        if checkpoint is not None:
            _kill_rank(launcher, 1)
            killed_after = int(checkpoint.name.split("-")[1])
            break
        time.sleep(0.02)
    code = launcher.wait(timeout=120)  # the launcher stops the surviving process
    assert killed_after is not None and killed_after < steps, "the run ended before it could be killed"
    assert code != 0
    assert not output.exists(), "a killed run must not leave anything that looks like a finished model"

    resumed = subprocess.run(_torchrun("-m", "training", *args, "--resume"), cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    step = int(re.search(r"resuming from .*checkpoint-(\d+)", resumed.stderr).group(1))
    assert step >= killed_after and resumed.stderr.count("resuming from") == 1
    final = latest_complete_checkpoint(output)
    assert is_complete(final)
    assert json.loads((final / "trainer_state.json").read_text())["global_step"] == steps
    assert json.loads((output / "training_config.json").read_text())["processes"] == 2
    assert (output / "adapter_model.safetensors").is_file() and (output / "README.md").is_file()
    assert checkpoint_dir(output).is_dir()


def test_two_process_evaluation_gives_the_same_report(registry_file, release_folder, tmp_path):
    """`summarizer evaluate` under torchrun: byte-for-byte the same summaries and ROUGE as one
    process (greedy; the batches are formed as one process forms them, then shared out)."""
    args = ["-m", "summarizer", "evaluate", "--models", "original,peft-lora,peft-prompt,instruct,longest-3",
            "--registry", str(registry_file), "--data", str(release_folder), "--split", "test",
            "--max-new-tokens", "8", "--batch-size", "2", "--shots", "0,1"]
    one = subprocess.run([sys.executable, *args, "--output", str(tmp_path / "one.json")], cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, timeout=300)
    two = subprocess.run(_torchrun(*args, "--output", str(tmp_path / "two.json")), cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1 and two.stdout.count("Absolute improvement") == 1

    def without_timings(report: dict) -> dict:
        rows = [{k: v for k, v in row.items() if k not in ("seconds", "batch_size")}
                for row in report["rows"]]
        aggregate = [{k: v for k, v in row.items() if k != "seconds"} for row in report["aggregate"]]
        return {"rows": rows, "aggregate": aggregate}

    single = json.loads((tmp_path / "one.json").read_text())
    double = json.loads((tmp_path / "two.json").read_text())
    assert single["settings"]["processes"] == 1 and double["settings"]["processes"] == 2
    assert len(single["rows"]) == 5 * 4 * 2 and all(r["error"] is None for r in double["rows"])
    assert len({r["summary"] for r in single["rows"]}) > 10  # the models write different things
    assert json.dumps(without_timings(double), sort_keys=True) == json.dumps(without_timings(single),
                                                                             sort_keys=True)
    # Each process decoded its own share of the batches, each batch as one process built it.
    assert [r["batch_size"] for r in double["rows"]] == [r["batch_size"] for r in single["rows"]]


def test_batches_are_shared_out_whole_and_each_exactly_once():
    from types import SimpleNamespace

    from summarizer.distributed import share

    batches = [[i, i + 1] for i in range(0, 14, 2)]
    shares = [share(batches, SimpleNamespace(process_index=rank, num_processes=3)) for rank in range(3)]
    assert sorted(b for s in shares for b in s) == batches
    assert [len(s) for s in shares] == [3, 2, 2]
    assert share(batches, None) == batches


# ------------------------------------------------------------------------------------------------
# Refusals: every process stops at once, one error line


def _one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return lines[0]


def test_bad_flags_under_torchrun_fail_at_once_with_one_line(world, tmp_path):
    logs = tmp_path / "logs"
    for flags, expected in ((["--max-steps", "0"], "--max-steps must be a positive number"),
                            (["--no-such-flag"], "unrecognized arguments: --no-such-flag")):
        started = time.monotonic()
        # --redirects 3: each process's output goes to its own file under --log-dir, so what
        # the processes print is told apart from torchrun's own report of the failure.
        completed = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "--log-dir", str(logs / flags[0].strip("-")), "--redirects", "3",
             "-m", "training", *_training_args(world, "lora", tmp_path / "out"), *flags],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
        assert completed.returncode != 0
        assert seconds < 60, seconds
        outputs = {int(p.parent.name): p.read_text() for p in (logs / flags[0].strip("-")).rglob("stderr.log")}
        assert sorted(outputs) == [0, 1]
        assert expected in _one_error_line(outputs[0])
        assert "error" not in outputs[1].lower(), outputs[1]
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.checkpoints").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_check_that_fails_on_one_process_stops_every_process(world, tmp_path):
    """The data path is relative and only rank 0's working folder has it (as on a node that does
    not share the file system): rank 1 refuses, rank 0 agrees with it, both exit 2 at once and
    rank 0 prints rank 1's reason on one line; no process waits for the other."""
    import shutil

    here, there = tmp_path / "rank0", tmp_path / "rank1"
    here.mkdir()
    there.mkdir()
    shutil.copytree(world["data"], here / "data")
    port = _free_port()
    processes = []
    for rank, folder in ((0, here), (1, there)):
        env = {**_env(), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        argv = _training_args(world, "lora", tmp_path / "out")
        argv[argv.index("--data") + 1] = "data"
        processes.append(subprocess.Popen([sys.executable, "-m", "training", *argv], cwd=folder, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    started = time.monotonic()
    results = [p.communicate(timeout=120) for p in processes]
    assert time.monotonic() - started < 60
    assert [p.returncode for p in processes] == [2, 2]
    line = _one_error_line(results[0][1])
    assert "data not found: data" in line, line
    assert results[1][1].strip() == "" and results[0][0] == results[1][0] == ""
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.checkpoints").exists()


# ------------------------------------------------------------------------------------------------
# Bigger models: gradient checkpointing, the FSDP config for flan-t5-xl


def _train_in_process(world, method: str, output: Path, *extra: str):
    from training.cli import build_parser
    from training.config import RunSettings, from_namespace
    from training.methods import METHODS as modules
    from training.run import train

    args = build_parser().parse_args(_training_args(world, method, output, "--limit-eval", "0", *extra))
    return train(method, from_namespace(RunSettings, args), from_namespace(modules[method].Config, args),
                 progress=False)


@pytest.mark.parametrize("method", METHODS)
def test_gradient_checkpointing_trains_the_same_weights(world, tmp_path, method):
    """--gradient-checkpointing recomputes activations in the backward pass instead of keeping
    them: it is on in the trained model, and the weights come out as without it (up to the float
    order of the recomputed backward pass)."""
    plain = _train_in_process(world, method, tmp_path / "plain", "--max-steps", "3")
    recomputed = _train_in_process(world, method, tmp_path / "recomputed", "--max-steps", "3",
                                   "--gradient-checkpointing")

    def model(result):
        return result.model.get_base_model() if hasattr(result.model, "get_base_model") else result.model

    assert model(recomputed).is_activation_checkpointing and not model(plain).is_activation_checkpointing
    start, a, b = _initial_weights(world, method), _weights(plain.output), _weights(recomputed.output)
    assert _distance(a, b) <= 1e-3 * _distance(a, start), (_distance(a, b), _distance(a, start))


def _documented_command(prefix: str) -> list[str]:
    """The command line in docs/scale.md that starts with `prefix`, continuation lines joined."""
    import shlex

    text = (ROOT / "docs" / "scale.md").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split("  #")[0])


def test_fsdp_config_for_flan_t5_xl_passes_accelerates_checks():
    """Not run here (no GPUs): the shipped config and docs/scale.md's command go through what
    `accelerate launch` does before it starts anything, the FSDP plugin built from the result,
    and its wrap policy applied to flan-t5-xl's architecture (on the meta device: no weights)."""
    from unittest import mock

    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    from training.cli import build_parser
    from training.params import meta_t5, method_parameters

    command = _documented_command("accelerate launch --config_file training/accelerate/fsdp-flan-t5-xl.yaml")
    config = ROOT / command[command.index("--config_file") + 1]
    assert config.is_file()
    args = launch_command_parser().parse_args([*command[2:command.index("--config_file")],
                                               "--config_file", str(config),
                                               *command[command.index("--config_file") + 2:]])
    args, _, _ = _validate_launch_command(args)
    assert args.use_fsdp and args.mixed_precision == "bf16" and args.module
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"  # checkpoints the Trainer can resume
    assert plugin.cpu_ram_efficient_loading and plugin.activation_checkpointing and plugin.reshard_after_forward
    plugin.set_auto_wrap_policy(meta_t5("flan-t5-xl"))  # raises if T5Block were not in the model
    assert {c.__name__ for c in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]} == {"T5Block"}

    # The training command after `-m training` is one this project accepts.
    assert args.training_script == "training"
    training_args = build_parser().parse_args(args.training_script_args)
    assert training_args.command == "full" and training_args.base == "google/flan-t5-xl"
    # Why FSDP: AdamW full fine-tuning holds 16 bytes per parameter, beyond one 40 GB GPU.
    assert method_parameters("flan-t5-xl", "full").trainable * 16 > 40e9


# ------------------------------------------------------------------------------------------------
# GPUs on Spaces


def test_generation_runs_through_spaces_gpu_with_arguments_zerogpu_can_send(tmp_path, tiny_models):
    """On a ZeroGPU Space each batch's decoding is a `spaces.GPU` call, which ZeroGPU runs in a
    forked worker after pickling its arguments. `spaces` is not installed here: a stand-in package
    does what the real decorator does to the call (pickles the arguments), and the summaries must
    equal those of a run without it."""
    stand_in = tmp_path / "stand_in" / "spaces"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text('''
import pickle
calls, durations = [], []
def GPU(task=None, duration=60):
    if task is None:  # spaces.GPU(duration=...) as a decorator factory, as the real one
        return lambda fn: GPU(fn, duration)
    def call(*args, **kwargs):
        pickle.dumps((args, kwargs))  # ZeroGPU queues them to its worker process
        calls.append(task.__name__)
        durations.append(duration(*args, **kwargs) if callable(duration) else duration)
        return task(*args, **kwargs)
    return call
''')
    script = f'''
import json, sys
from summarizer.data import Example
from summarizer.generation import DecodingSettings, summarize
from summarizer.registry import ModelSpec, Registry
registry = Registry([ModelSpec("original", "seq2seq", {str(tiny_models["base"])!r}),
                     ModelSpec("lora", "lora", {str(tiny_models["lora"])!r}, base={str(tiny_models["base"])!r}),
                     ModelSpec("soft", "prompt-tuning", {str(tiny_models["prompt"])!r}, base={str(tiny_models["base"])!r})])
examples = [Example(f"e{{i}}", f"#Person1#: I need {{i}} tickets.\\n#Person2#: For {{i}} people then.") for i in range(3)]
partial = []
results = summarize(registry, ["original", "lora", "soft"], examples, decoding=DecodingSettings(max_new_tokens=6, batch_size=2),
                    on_partial=lambda *row: partial.append(row))
try:
    import spaces
    calls = spaces.calls
    durations = spaces.durations
except ImportError:
    calls = None
print(json.dumps({{"summaries": [r.summary for r in results], "errors": [r.error for r in results],
                  "calls": calls, "streamed": bool(partial),
                  "durations": durations if calls is not None else None}}))
'''
    def run(extra_path: list[str], env_extra: dict) -> dict:
        env = {**_env(), **env_extra, "PYTHONPATH": os.pathsep.join([*extra_path, str(ROOT)])}
        completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                   timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return json.loads(completed.stdout.strip().splitlines()[-1])

    plain = run([], {})
    # No CUDA emulation here: the models stay on the CPU ($SUMMARIZER_DEVICE), the calls are real.
    on_space = run([str(stand_in.parent)], {"SPACES_ZERO_GPU": "true", "SUMMARIZER_DEVICE": "cpu"})
    assert plain["calls"] is None and plain["streamed"]
    assert on_space["errors"] == [None] * 9 and on_space["summaries"] == plain["summaries"]
    # original+lora share 3 batches of up to 2 rows (6 rows), the soft prompt 2 (3 rows)
    assert on_space["calls"] == ["_decode"] * 5
    from summarizer.hosting import decode_seconds
    assert set(on_space["durations"]) <= {decode_seconds(2, 6), decode_seconds(1, 6)}  # from each request
    assert not on_space["streamed"]  # the streamer would call back across the process boundary
