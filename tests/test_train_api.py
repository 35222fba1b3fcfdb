"""The Train tab's API in the running app, through gradio_client as docs/app.md shows it: a job
started by one client and followed by another; once done, its model summarizes in /compare for
any client (its name joins the choices Gradio checks requests against)."""

from __future__ import annotations

import time

import pytest

from helpers import write_registry, write_release_folder
from test_app import running_app


@pytest.fixture(scope="module")
def train_app(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("train-api")
    registry = write_registry(root / "models.toml", tiny_models)
    data = write_release_folder(root / "dialogsum", train=24)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_JOBS_DIR", str(root / "jobs"))
        with running_app(registry, data, votes=root / "votes.sqlite3") as (demo, url):
            yield url


def test_a_finished_job_summarizes_in_compare_for_another_client(train_app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    trainer, viewer = Client(train_app, verbose=False), Client(train_app, verbose=False)
    with pytest.raises(AppError, match="not in the list of choices|unknown model"):
        viewer.predict(dialogue="#Person1#: Hi.\n#Person2#: Hello.", models=["api-lora"], api_name="/compare")
    started = time.monotonic()
    job = trainer.predict(method="lora", base="original", name="api-lora", max_steps=4,
                          per_device_train_batch_size=4, limit_train=16, api_name="/train")
    assert time.monotonic() - started < 30 and isinstance(job, str) and job
    deadline = time.monotonic() + 180
    while (status := viewer.predict(job, api_name="/train_status"))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["state"] == "done" and status["model"] == "api-lora", status
    assert status["losses"] and status["max_steps"] == 4
    *_, results, notes = viewer.predict(dialogue="#Person1#: Hi, I will bring 3 books.\n#Person2#: Thanks.",
                                        models=["api-lora", "longest-3"], max_new_tokens=8, api_name="/compare")
    card = {m["model"]: m for m in results["models"]}["api-lora"]
    assert card["error"] is None and isinstance(card["summary"], str), card
    with pytest.raises(AppError, match="is taken") as taken:  # the name is taken now
        trainer.predict(method="lora", base="original", name="api-lora", max_steps=4, api_name="/train")
    assert "\n" not in str(taken.value)
