"""Training jobs (training.jobs): submit, follow, stop, register, restart, refuse, ZeroGPU slices.

Tiny models and a handful of steps: the session fixture `world` (conftest.py) gives a tiny T5 base
and DialogSum-layout data; each job trains LoRA on it for a few CPU steps.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import types
import zipfile
from pathlib import Path

import pytest

from helpers import write_jsonl, synthetic_pairs

from summarizer.errors import UserError

CAPS = dict(enabled=True, reason="", max_steps=200, max_minutes=10, max_batch_size=16, max_limit_eval=16)


def _registry(world):
    from summarizer.registry import ModelSpec, Registry

    return Registry([ModelSpec("tiny-base", "seq2seq", str(world["base"]), speakers="dialogsum")])


def _service(world, folder: Path, registry=None, **caps):
    """`world`: a dict with the base folder and the data source (the `world` fixture or `quick`)."""
    from training.job_request import TrainingCaps
    from training.jobs import TrainingJobs

    return TrainingJobs(registry or _registry(world), folder, data_source=str(world["data"]),
                        caps=TrainingCaps(**{**CAPS, **caps}))


@pytest.fixture
def quick(tiny_models, release_folder) -> dict:
    """A random tiny base and a small release-layout folder: enough for checks, no training."""
    return {"base": tiny_models["base"], "data": release_folder}


def _params(name: str, **extra) -> dict:
    return {"method": "lora", "base": "tiny-base", "name": name, "max_steps": 12,
            "per_device_train_batch_size": 8, "learning_rate": 1e-2, "lora_r": 4, "lora_alpha": 8,
            "lora_dropout": 0.0, "logging_steps": 2, "save_steps": 5, "limit_eval": 8, **extra}


@pytest.fixture
def jobs(world, tmp_path):
    service = _service(world, tmp_path / "jobs")
    yield service
    service.close()


@pytest.fixture(scope="module")
def finished(world, tmp_path_factory):
    """One LoRA job run to the end; the tests below read it."""
    folder = tmp_path_factory.mktemp("finished") / "jobs"
    service = _service(world, folder)
    job_id = service.submit(_params("my-lora"), client_id="a")
    seen = [service.status(job_id)["state"]]
    status = service.wait(job_id, timeout=300)
    service.close()
    return {"service": service, "id": job_id, "status": status, "folder": folder, "seen": seen}


@pytest.mark.slow
def test_a_job_trains_reports_and_registers_its_model(finished, world):
    from summarizer.data import load_split
    from summarizer.generation import summarize

    status, service = finished["status"], finished["service"]
    assert finished["seen"][0] in ("queued", "running")
    assert status["state"] == "done", status["error"]
    assert status["step"] == status["max_steps"] == 12 and status["model"] == "my-lora"
    assert [s for s, _ in status["losses"]] == [1, 2, 4, 6, 8, 10, 12]  # every logging step
    assert status["losses"][-1][1] < status["losses"][0][1]
    # dev ROUGE at the checkpoints (5, 10) and the final evaluation at 12
    assert [r["step"] for r in status["rouge"]] == [5, 10, 12]
    assert status["final_rouge"]["n"] == 8 and status["rouge"][-1]["rouge1"] == status["final_rouge"]["rouge1"]
    assert 0 < status["trainable_share"] < 0.5 and status["eta_seconds"] is None
    registry = service.registry
    assert "my-lora" in registry.names() and registry.spec("my-lora").kind == "lora"
    example = load_split(str(world["data"]), "validation", limit=1)
    result = summarize(registry, ["my-lora"], example)[0]
    assert result.error is None and result.summary.strip()
    # an adapter sits on the registry's own copy of its base
    assert registry.get("my-lora").backbone is registry.get("tiny-base").backbone
    with zipfile.ZipFile(service.model_zip(finished["id"])) as archive:
        assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= set(archive.namelist())


@pytest.mark.slow
def test_a_restarted_server_finds_the_job_and_its_model(finished, world):
    from summarizer.data import load_split
    from summarizer.generation import summarize
    from training.jobs import TrainingJobs

    registry = _registry(world)
    again = TrainingJobs(registry, finished["folder"], data_source=str(world["data"]))
    assert again.status(finished["id"])["state"] == "done"
    assert again.status(finished["id"])["losses"] == finished["status"]["losses"]
    assert "my-lora" in registry.names()
    result = summarize(registry, ["my-lora"], load_split(str(world["data"]), "validation", limit=1))[0]
    assert result.error is None
    with pytest.raises(UserError, match="taken"):  # its name stays taken
        again.submit(_params("my-lora"), client_id="b")


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_queue_positions_stop_and_no_half_written_model(jobs, world):
    first = jobs.submit(_params("long", max_steps=150, save_steps=1000), client_id="a")
    _wait_for(lambda: jobs.status(first)["state"] == "running")
    second = jobs.submit(_params("next"), client_id="b")
    assert jobs.status(second)["queue_position"] == 1
    third = jobs.submit(_params("later"), client_id="c")
    assert jobs.status(third)["queue_position"] == 2
    assert jobs.stop(second)["state"] == "stopped"
    assert jobs.status(third)["queue_position"] == 1
    _wait_for(lambda: jobs.status(first)["step"] >= 3)
    running = jobs.status(first)
    assert running["state"] == "running" and running["queue_position"] is None
    assert running["eta_seconds"] is not None and running["eta_seconds"] > 0
    jobs.stop(first)
    status = jobs.wait(first, timeout=120)
    assert status["state"] == "stopped" and status["model"] is None and status["error"] is None
    assert 3 <= status["checkpoint"] < 150  # the step reached was saved on the way out
    assert not (jobs.folder / first / "model").exists() and "long" not in jobs.registry.names()
    assert "long" not in (jobs.runtime_file.read_text() if jobs.runtime_file.exists() else "")
    jobs.stop(third)
    # on request, the stopped job's checkpoint becomes a registered model
    assert jobs.register_checkpoint(first) == "long" and "long" in jobs.registry.names()
    assert jobs.status(first)["state"] == "stopped" and jobs.status(first)["model"] == "long"
    from summarizer.data import load_split
    from summarizer.generation import summarize
    result = summarize(jobs.registry, ["long"], load_split(str(world["data"]), "validation", limit=1))[0]
    assert result.error is None


def _write_csv(path: Path, rows: list[dict], columns=("dialogue", "summary")) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows({c: r[c] for c in columns} for r in rows)
    return path


def test_bad_requests_are_refused_in_one_line_and_start_nothing(quick, tmp_path):
    jobs = _service(quick, tmp_path / "jobs", max_upload_bytes=20_000)
    rows = synthetic_pairs(30)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("dialogue,summary\nCaf\xe9 talk,They talk.\n".encode("latin-1"))
    (tmp_path / "empty.csv").write_text("")
    big = write_jsonl(tmp_path / "big.jsonl", synthetic_pairs(200))
    cases = [
        (_params("x", max_steps=0), None, "max_steps"),
        (_params("x", base="no-such-model"), None, "unknown base"),
        (_params("tiny-base"), None, "taken"),
        (_params("x", output="/tmp/elsewhere"), None, "server-only"),
        (_params("x", method="distill"), None, "unknown training method"),
        (_params("x", lora_r="abc"), None, "lora_r"),
        (_params("bad name!"), None, "name"),
        (_params("x", max_steps=10_000), None, "max_steps"),
        (_params("x"), _write_csv(tmp_path / "nosummary.csv", rows, ("dialogue",)), "no summary column"),
        (_params("x"), tmp_path / "empty.csv", "empty"),
        (_params("x"), big, "limit"),
        (_params("x"), latin, "UTF-8"),
        (_params("x"), write_jsonl(tmp_path / "few.jsonl", rows[:3]), "dialogues"),
        (_params("x"), tmp_path / "notes.txt", ".csv or .jsonl"),
    ]
    for params, upload, message in cases:
        with pytest.raises(UserError, match=message) as err:
            jobs.submit(params, client_id="a", upload=upload)
        assert "\n" not in str(err.value)
    assert jobs.jobs() == [] and [p.name for p in jobs.folder.iterdir()] == []
    # one job per visitor at a time
    jobs.submit(_params("ok", max_steps=100), client_id="a")
    with pytest.raises(UserError, match="already have"):
        jobs.submit(_params("ok2"), client_id="a")
    jobs.close()


@pytest.mark.slow
def test_an_uploaded_file_trains_a_model(jobs, world, tmp_path):
    upload = _write_csv(tmp_path / "pairs.csv", synthetic_pairs(40))
    job_id = jobs.submit(_params("from-upload", max_steps=4, limit_eval=8), client_id="a", upload=upload)
    status = jobs.wait(job_id, timeout=300)
    assert status["state"] == "done", status["error"]
    assert status["data"] == "upload" and status["final_rouge"]["n"] == 8  # held-out rows of the file
    assert "from-upload" in jobs.registry.names()


def test_training_is_off_on_a_space_unless_enabled():
    from training.job_request import training_caps

    local = training_caps({})
    assert local.enabled and local.jobs_per_day is None
    assert not training_caps({"STUDIO_TRAINING": "0"}).enabled
    space = training_caps({"SPACE_ID": "me/studio"})
    assert not space.enabled and "STUDIO_TRAINING=1" in space.reason
    enabled = training_caps({"SPACE_ID": "me/studio", "STUDIO_TRAINING": "1"})
    assert enabled.enabled and enabled.max_steps < local.max_steps and enabled.jobs_per_day


def test_a_disabled_server_refuses_every_job(quick, tmp_path):
    jobs = _service(quick, tmp_path / "jobs", enabled=False, reason="training is off")
    with pytest.raises(UserError, match="training is off"):
        jobs.submit(_params("x"))
    assert jobs.jobs() == []


def test_form_fields_come_from_the_training_dataclasses():
    from training.job_request import form_fields

    lora = {f["name"]: f for f in form_fields("lora")}
    assert {"lora_r", "lora_alpha", "target_modules", "learning_rate", "max_steps", "limit_train",
            "per_device_train_batch_size", "base", "name"} <= set(lora)
    assert not {"output", "data", "overwrite", "resume", "save_dtype"} & set(lora)
    assert lora["lora_r"]["default"] == 32 and lora["target_modules"]["many"]
    prompt = {f["name"] for f in form_fields("prompt-tuning")}
    assert "num_virtual_tokens" in prompt and "lora_r" not in prompt


def _adapter(folder: Path):
    from safetensors.torch import load_file
    return load_file(str(folder / "model" / "adapter_model.safetensors"))


@pytest.mark.slow
def test_zero_gpu_trains_in_bounded_calls_resuming_each_time(world, tmp_path, monkeypatch):
    """With the stand-in `spaces` module, a job is a chain of GPU calls of one declared duration,
    each resuming from the checkpoint the last one saved, and it ends where one long run ends."""
    import torch

    calls = []

    def gpu(duration=60):
        def wrap(fn):
            def call(*args):
                calls.append(duration)
                return fn(*args)
            return call
        return wrap

    plain = _service(world, tmp_path / "plain")
    whole = plain.submit(_params("whole", max_steps=8, save_steps=100))
    assert plain.wait(whole, timeout=300)["state"] == "done"
    plain.close()

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("SUMMARIZER_DEVICE", "cpu")
    from training.job_request import TrainingCaps
    from training.jobs import TrainingJobs
    zero = TrainingJobs(_registry(world), tmp_path / "zero", data_source=str(world["data"]),
                        caps=TrainingCaps(**CAPS), slice_seconds=0.01)
    sliced = zero.submit(_params("sliced", max_steps=8, save_steps=100))
    status = zero.wait(sliced, timeout=300)
    zero.close()
    assert status["state"] == "done", status["error"]
    assert len(calls) >= 2 and set(calls) == {1}  # several calls, each declaring the same duration
    assert json.loads((zero.folder / sliced / "status.json").read_text())["slices"] == len(calls)
    assert [s for s, _ in status["losses"]] == [1, 2, 4, 6, 8]
    a, b = _adapter(plain.folder / whole), _adapter(zero.folder / sliced)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_train_api_through_gradio_client(world, tmp_path):
    """/train answers with a job id at once, a second client follows it by id and sees it run,
    /train_stop stops it, and a bad request is refused in one line."""
    import socket

    import gradio as gr
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from webui.components.train import create_train_tab

    jobs = _service(world, tmp_path / "jobs")
    with gr.Blocks() as demo:
        tab = create_train_tab(jobs)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        first, second = Client(url, verbose=False), Client(url, verbose=False)
        assert {"/train", "/train_status", "/train_stop"} <= set(
            first.view_api(return_format="dict", print_info=False)["named_endpoints"])
        started = time.time()
        job_id = first.predict(method="lora", base="tiny-base", name="via-api", max_steps=150,
                               per_device_train_batch_size=8, learning_rate=1e-2, limit_train=None,
                               lora_r=4, lora_alpha=8, target_modules=["q", "v"], api_name="/train")
        assert time.time() - started < 30 and jobs.status(job_id)["state"] in ("queued", "running")
        _wait_for(lambda: second.predict(job_id, api_name="/train_status")["step"] >= 2)
        seen = second.predict(job_id, api_name="/train_status")
        assert seen["state"] == "running" and seen["losses"] and seen["trainable_share"] > 0
        second.predict(job_id, api_name="/train_stop")
        assert jobs.wait(job_id, timeout=120)["state"] == "stopped"
        with pytest.raises(AppError, match="unknown base") as err:
            first.predict(method="lora", base="nope", name="x", max_steps=5, api_name="/train")
        assert "\n" not in str(err.value)
        with pytest.raises(AppError, match="max_steps"):
            first.predict(method="lora", base="tiny-base", name="x", max_steps=0, api_name="/train")
        assert tab["jobs"] is jobs and len(jobs.jobs()) == 1
    finally:
        demo.close()
        jobs.close()


@pytest.mark.slow
def test_the_tab_shows_a_finished_job_and_opens_it_from_a_link(finished, world):
    """The tab's own handlers (no browser): a finished job's status, curve, ROUGE and zip, and a
    `?job=ID` link that opens on it (an unknown id opens on nothing)."""
    import gradio as gr

    from training.jobs import TrainingJobs
    from webui.components.train import create_train_tab

    jobs = TrainingJobs(_registry(world), finished["folder"], data_source=str(world["data"]))
    with gr.Blocks() as demo:
        tab = create_train_tab(jobs)
    handlers = {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}
    open_link = tab["load"][0]  # for demo.load in webui/interface.py
    text, losses, rouge, stop, keep, download, timer, *_ = handlers["show"](finished["id"])
    assert "**Done**" in text and "`my-lora`" in text and f"?job={finished['id']}" in text
    assert list(losses["step"]) == [1, 2, 4, 6, 8, 10, 12] and list(rouge["step"]) == [5, 10, 12]
    assert download.value["orig_name"] == "my-lora.zip" and download.visible
    assert not stop.visible and not timer.active
    link = types.SimpleNamespace(query_params={"job": finished["id"]})
    assert open_link(link)[0] == finished["id"]
    assert open_link(types.SimpleNamespace(query_params={"job": "nope"}))[0] == ""


@pytest.mark.slow
def test_a_job_trains_exactly_what_the_cli_trains(world, tmp_path):
    """Dropout on, dev ROUGE scored at the checkpoints on the way: the job's adapter is the one
    `training.run.train` (what `python -m training lora` calls) makes with the same settings."""
    import torch

    from training.config import RunSettings
    from training.methods import lora
    from training.run import train

    jobs = _service(world, tmp_path / "jobs")
    job_id = jobs.submit(_params("noisy", max_steps=8, save_steps=3, lora_dropout=0.3), client_id="a")
    status = jobs.wait(job_id, timeout=300)
    jobs.close()
    assert status["state"] == "done" and [r["step"] for r in status["rouge"]] == [3, 6, 8]
    direct = train("lora", RunSettings(
        base=str(world["base"]), data=str(world["data"]), output=str(tmp_path / "direct" / "model"),
        max_steps=8, save_steps=3, logging_steps=2, limit_eval=8), lora.Config(
        lora_r=4, lora_alpha=8, lora_dropout=0.3, learning_rate=1e-2), progress=False)
    assert status["losses"] == [[s, pytest.approx(l, rel=1e-5)] for s, l in
                                zip([1, 2, 4, 6, 8], direct.losses)]
    a, b = _adapter(tmp_path / "jobs" / job_id), _adapter(tmp_path / "direct")
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_a_job_cut_off_by_a_restart_is_stopped_and_a_queued_one_waits(quick, tmp_path):
    folder = tmp_path / "jobs"
    records = {"cut": "running", "waiting": "queued"}
    for job_id, state in records.items():
        (folder / job_id).mkdir(parents=True)
        (folder / job_id / "status.json").write_text(json.dumps(
            {"id": job_id, "state": state, "name": job_id, "method": "lora", "base": "tiny-base",
             "client": "a", "params": {"max_steps": 5}, "created": time.time()}))
    # the queued one cannot start (no params.json): it must fail alone, the service carries on
    jobs = _service(quick, folder)
    cut = jobs.status("cut")
    assert cut["state"] == "stopped" and "restart" in cut["error"]
    assert json.loads((folder / "cut" / "status.json").read_text())["state"] == "stopped"
    assert jobs.wait("waiting", timeout=60)["state"] == "failed"
    with pytest.raises(UserError, match="nothing to register"):
        jobs.register_checkpoint("cut")
    jobs.close()


@pytest.mark.slow
def test_a_training_process_killed_fails_its_job_and_the_server_goes_on(jobs, world, capfd):
    """Off ZeroGPU a job trains in a child process: the out-of-memory killer (SIGKILL) ends that
    process, not the server; the job fails in one line and the next job trains."""
    import os
    import signal

    doomed = jobs.submit(_params("doomed", max_steps=150, save_steps=1000), client_id="a")
    _wait_for(lambda: jobs.status(doomed)["step"] >= 2)
    child = jobs._slice._child
    assert child is not None and child.pid != os.getpid()
    os.kill(child.pid, signal.SIGKILL)
    status = jobs.wait(doomed, timeout=60)
    assert status["state"] == "failed" and status["model"] is None
    assert "killed (SIGKILL), most likely out of memory" in status["error"]
    assert "\n" not in status["error"] and "doomed" not in jobs.registry.names()
    # the Trainer's own lines went to the job's log, not to the server's output
    log = (jobs.folder / doomed / "train.log").read_text()
    assert "trainable" in log and "trainable" not in capfd.readouterr().out
    survivor = jobs.submit(_params("survivor"), client_id="a")
    assert jobs.wait(survivor, timeout=300)["state"] == "done"
    assert "survivor" in jobs.registry.names()


SERVER = """
import json, sys, time
sys.path.insert(0, {tests!r})
from test_training_jobs import _service, _params
jobs = _service({world!r}, __import__("pathlib").Path({folder!r}), max_steps=100_000)
job = jobs.submit(_params("orphan", max_steps=100_000, save_steps=10_000))
while jobs._slice._child is None:
    time.sleep(0.1)
print(jobs._slice._child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_killed_server_leaves_no_training_behind(world, tmp_path):
    """The child ends itself when the server that started it is gone (no orphan holding the CPU)."""
    import os
    import signal
    import subprocess

    tests = str(Path(__file__).parent)
    script = SERVER.format(tests=tests, world={k: str(v) for k, v in world.items()},
                           folder=str(tmp_path / "jobs"))
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(tests).parent)
    child = int(server.stdout.readline())
    server.kill()
    server.wait()
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the training process outlived its server")


@pytest.mark.slow
def test_a_server_exit_cuts_the_job_off_as_a_restart_does(world, tmp_path):
    """At exit the server ends its training process (weakref.finalize -> terminate): that is no
    failure of the job; the next start finds it stopped with its checkpoint, the queued one waits."""
    folder = tmp_path / "jobs"
    jobs = _service(world, folder)
    cut = jobs.submit(_params("cut", max_steps=150, save_steps=2), client_id="a")
    waiting = jobs.submit(_params("waiting"), client_id="b")
    _wait_for(lambda: (jobs.status(cut)["checkpoint"] or 0) >= 2)
    jobs._slice.terminate()  # what the exit handler does
    _wait_for(lambda: not jobs._worker.is_alive(), timeout=30)
    assert json.loads((folder / cut / "status.json").read_text())["state"] == "running"
    assert jobs.status(waiting)["state"] == "queued"  # a dying server starts nothing new
    restarted = _service(world, folder)
    status = restarted.status(cut)
    assert status["state"] == "stopped" and "restart" in status["error"] and status["checkpoint"] >= 2
    assert restarted.register_checkpoint(cut) == "cut"
    restarted.stop(waiting)
    restarted.close()
