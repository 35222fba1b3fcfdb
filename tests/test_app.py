"""DialogSum Studio: the studio functions directly, then the real app through gradio_client."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import synthetic_pairs, write_registry, write_release_folder
from summarizer import studio as core
from summarizer.errors import UserError
from summarizer.registry import Registry
from summarizer.votes import VoteStore

ROOT = Path(__file__).resolve().parent.parent

THREE = ["original", "peft-lora", "longest-3"]
DIALOGUE = ("#Person1#: Hello, I am Anna. I would like 3 books, please.\n"
            "#Person2#: Of course. Shall I bring them to the library?\n"
            "#Person1#: Yes, the library is fine. Thank you very much.")
REFERENCE = "Anna orders 3 books to the library."
FAST = dict(max_new_tokens=12)


def add_broken_model(path: Path) -> Path:
    with path.open("a", encoding="utf-8") as handle:
        handle.write('\n[models.broken]\nkind = "seq2seq"\npath = "/nonexistent/dialogsum-model"\n')
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("studio")
    registry = add_broken_model(write_registry(root / "models.toml", tiny_models))
    data = write_release_folder(root / "dialogsum")
    return {"root": root, "registry": registry, "data": data}


@pytest.fixture(scope="module")
def studio(setup):
    return core.Studio(Registry.from_file(setup["registry"]), data_source=str(setup["data"]),
                       results_path=setup["root"] / "no-results.json",
                       output_dir=setup["root"] / "outputs")


def final(studio, dialogue=DIALOGUE, reference=REFERENCE, models=THREE, **kwargs):
    decoding = core.decoding_settings(**{**FAST, **kwargs.pop("decoding", {})})
    return studio.comparisons.compare_all(dialogue, reference, models, decoding=decoding, **kwargs)


# ---------------------------------------------------------------------------------------------
# studio functions, no server


def test_compare_three_models_gives_summaries_and_rouge(studio):
    view = final(studio)
    assert view.done and [c.model for c in view.cards] == THREE
    for card in view.cards:
        assert card.state == "done", card.error
        assert isinstance(card.text, str)
        assert set(card.scores) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
        assert all(0.0 <= v <= 1.0 for v in card.scores.values())
        assert card.result.input_tokens > 0 and card.result.seconds >= 0
    longest = view.cards[2]
    assert longest.text and longest.scores["rouge1"] > 0 and "anna" in longest.shared
    table = core.rouge_table(view)
    assert list(table["model"]) == THREE
    assert core.compare_figure(view) is not None
    html = core.render_cards(view)
    assert "<mark>Anna</mark>" in html and "ROUGE-1" in html and "Prompt sent" in html
    data = view.to_dict()
    assert json.loads(json.dumps(data))["models"][0]["rouge"] is not None


def test_compare_streams_partial_text(studio):
    decoding = core.decoding_settings(max_new_tokens=8)
    views = []
    for view in studio.comparisons.compare(DIALOGUE, REFERENCE, ["original"], decoding=decoding, min_interval=0):
        views.append((view.cards[0].state, view.cards[0].text, view.done))
    assert views[0] == ("waiting", "", False)
    assert any(state == "running" for state, _, _ in views)
    assert views[-1][2] is True


def test_no_reference_shows_a_note_not_zeros(studio):
    view = final(studio, reference="   ", models=["longest-3", "original"])
    assert core.NO_REFERENCE_NOTE in view.notes
    assert all(c.scores is None for c in view.cards)
    assert core.rouge_table(view).empty
    assert core.compare_figure(view) is None
    assert "not computed" in core.render_cards(view)
    assert "0.000" not in core.render_cards(view)
    assert view.to_dict()["rouge_computed"] is False


def test_several_references_blank_line_separated(studio):
    view = final(studio, reference="Anna wants books.\n\nAnna orders 3 books to the library.",
                 models=["longest-3"])
    assert view.references == ["Anna wants books.", "Anna orders 3 books to the library."]
    assert view.cards[0].scores["rouge1"] > 0


@pytest.mark.parametrize("dialogue", ["", "   \n  ", None])
def test_empty_dialogue_is_refused(studio, dialogue):
    with pytest.raises(UserError, match="empty"):
        final(studio, dialogue=dialogue)


def test_huge_paste_is_refused_with_the_limit(studio):
    with pytest.raises(UserError, match=r"200,000 characters.*20,000"):
        final(studio, dialogue="a" * 200_000)


def test_no_models_and_unknown_model(studio):
    with pytest.raises(UserError, match="at least one model"):
        final(studio, models=[])
    with pytest.raises(UserError, match="unknown model"):
        final(studio, models=["nope"])


def test_html_and_script_come_back_escaped(studio):
    evil = ("#Person1#: <script>alert('x')</script> hello there my friend\n"
            "#Person2#: <img src=x onerror=alert(1)> <b>bold</b> words here\n#Person1#: ok")
    view = final(studio, dialogue=evil, reference="<i>hello</i> friend", models=["longest-3", "original"])
    html = core.render_cards(view)
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    notes = core.render_notes(final(studio, dialogue=evil, reference="", models=["longest-3"]))
    assert "<" not in notes.replace("&lt;", "")


def test_broken_model_shows_its_reason_while_others_work(studio):
    view = final(studio, models=["broken", "longest-3", "original"])
    broken, longest, original = view.cards
    assert broken.state == "error" and "/nonexistent/dialogsum-model" in broken.error
    assert longest.state == "done" and original.state == "done"
    html = core.render_cards(view)
    assert "could not run" in html and "model folder not found" in html
    assert "could not run: broken" in core.render_notes(view)
    studio.models.refresh_statuses()
    labels = dict((name, label) for label, name in studio.models.model_choices())
    assert labels["broken"].startswith("broken · unavailable")
    assert labels["longest-3"] == "longest-3 · ready"


def test_models_that_cannot_load_are_not_preselected(setup, tiny_models, tmp_path):
    registry = tmp_path / "models.toml"
    registry.write_text(f"""
[models.original]
kind = "seq2seq"
path = "/nonexistent/flan-t5-base"

[models.instruct]
kind = "seq2seq"
path = "{tiny_models['instruct']}"

[models.peft-lora]
kind = "lora"
path = "{tiny_models['lora']}"
base = "{tiny_models['base']}"

[models.longest-3]
kind = "extractive"
""", encoding="utf-8")
    studio = core.Studio(Registry.from_file(registry), data_source=str(setup["data"]))
    assert studio.models.default_models() == ["original", "peft-lora", "longest-3"]  # not checked yet
    studio.models.refresh_statuses()
    assert studio.models.default_models() == ["peft-lora", "longest-3"]
    registry.write_text(registry.read_text(encoding="utf-8").replace(str(tiny_models["lora"]), "/nonexistent/lora")
                        .replace('kind = "extractive"', 'kind = "seq2seq"\npath = "/nonexistent/x"'),
                        encoding="utf-8")
    studio = core.Studio(Registry.from_file(registry), data_source=str(setup["data"]))
    studio.models.refresh_statuses()
    assert studio.models.default_models() == ["instruct"]  # no preferred model can run: the ones that can


def test_the_page_names_missing_models_as_the_registry_does_not_by_server_path(setup, tmp_path):
    """A relative path in models.toml is shown relative, in the Models list and on the card:
    where the server keeps its checkout is none of the visitor's business."""
    registry = tmp_path / "models.toml"
    registry.write_text('[models.instruct]\nkind = "seq2seq"\npath = "./outputs/instruct"\n\n'
                        '[models.longest-3]\nkind = "extractive"\n', encoding="utf-8")
    studio = core.Studio(Registry.from_file(registry), data_source=str(setup["data"]))
    studio.models.refresh_statuses()
    label = dict((name, label) for label, name in studio.models.model_choices())["instruct"]
    reason = {row["model"]: row["reason"] for row in studio.models.status_table()}["instruct"]
    card = final(studio, models=["instruct", "longest-3"]).cards[0]
    for shown in (label, reason, card.error):
        assert "outputs/instruct" in shown and str(tmp_path) not in shown, shown


def test_few_shot_uses_train_examples_and_reports_dropped_shots(studio):
    shots = core.shot_settings("few-shot", 3, "topic")
    view = final(studio, models=["original", "longest-3"], shots=shots, topic="travel")
    prompt = view.cards[0].result.prompt
    assert len(prompt.shot_ids) == 3 and all(i.startswith("train_") for i in prompt.shot_ids)
    assert prompt.text.count("Summarize the following conversation.") == 4
    tight = final(studio, models=["original"], shots=shots, decoding={"max_prompt_tokens": 64})
    notices = tight.cards[0].result.prompt.notices
    assert notices and "dropped" in notices[0]
    assert "dropped to fit the token budget" in core.render_cards(tight)


def test_fixed_shots_by_id(studio):
    view = final(studio, models=["longest-3"], shots=core.shot_settings("few-shot", 2, "fixed", "train_3, train_5"))
    assert view.cards[0].result.prompt.shot_ids == ["train_3", "train_5"]
    with pytest.raises(UserError, match="not in the shot pool"):
        final(studio, models=["longest-3"], shots=core.shot_settings("one-shot", 1, "fixed", "train_999"))


def test_shot_settings_and_decoding_validation():
    assert core.shot_settings("zero-shot").shots == 0
    assert core.shot_settings("one-shot", 4).shots == 1
    assert core.shot_settings("few-shot", 4).shots == 4
    with pytest.raises(UserError):
        core.shot_settings("ten-shot")
    with pytest.raises(UserError, match="fixed shots need"):
        core.shot_settings("few-shot", 2, "fixed", "train_1")
    with pytest.raises(UserError, match="max new tokens"):
        core.decoding_settings(max_new_tokens=100_000)
    with pytest.raises(UserError, match="beams"):
        core.decoding_settings(num_beams=50)


def test_pick_example_random_next_index(studio):
    first = studio.examples.pick("validation", "index", 0)
    assert first.dialogue.startswith("#Person1#") and first.reference and first.index == 0
    nxt = studio.examples.pick("validation", "next", 0)
    assert nxt.index == 1
    wrapped = studio.examples.pick("validation", "next", 3)
    assert wrapped.index == 0
    test = studio.examples.pick("test", "random")
    assert len(test.reference.split("\n\n")) == 3 and test.topic
    assert "dev_0" in first.info
    with pytest.raises(UserError):
        studio.examples.pick("train", "random")
    with pytest.raises(UserError, match="example number"):
        studio.examples.pick("validation", "index", 99)


def test_missing_data_gives_a_clear_message(setup, tmp_path):
    studio = core.Studio(Registry.from_file(setup["registry"]), data_source=str(tmp_path / "none"))
    with pytest.raises(UserError, match="data not found"):
        studio.examples.pick("validation", "random")
    with pytest.raises(UserError, match="train split"):
        final(studio, models=["longest-3"], shots=core.shot_settings("one-shot"))


def write_upload(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_batch_csv_gives_summaries_rouge_and_a_csv(studio, tmp_path):
    rows = [{"id": r["id"], "dialogue": r["dialogue"], "summary": r["summary"]} for r in synthetic_pairs(3)]
    rows.append({"id": "no_ref", "dialogue": DIALOGUE, "summary": ""})
    path = write_upload(tmp_path / "mine.csv", rows)
    seen = []
    output = studio.batches.run(path, ["longest-3", "original"], decoding=core.decoding_settings(**FAST),
                              progress=lambda fraction, desc: seen.append(fraction))
    assert len(output.rows) == 8 and seen[0] == 0.0 and seen[-1] == 1.0
    with_ref = [r for r in output.rows if r["id"] != "no_ref"]
    assert all(r["rouge1"] is not None for r in with_ref)
    assert all(r["rouge1"] is None for r in output.rows if r["id"] == "no_ref")
    assert {s["model"]: s["scored"] for s in output.summary} == {"longest-3": 3, "original": 3}
    with output.csv_path.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == 8 and written[0]["model"] == "longest-3" and "rougeLsum" in written[0]
    assert "3 row(s) with a reference" in output.message


def test_batch_broken_model_is_reported(studio, tmp_path):
    path = write_upload(tmp_path / "mine.jsonl", [{"dialogue": DIALOGUE}])
    output = studio.batches.run(path, ["broken", "longest-3"])
    assert "Failed: broken" in output.message
    assert output.rows[0]["error"] and not output.rows[1]["error"]


def test_malformed_uploads_give_clear_messages(studio, tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"dialogue": "#Person1#: hi"}\n{"dialogue": oops}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"^bad\.jsonl:2: not valid JSON"):
        studio.batches.run(bad_json, ["longest-3"])
    no_column = write_upload(tmp_path / "cols.csv", [{"text": "hello"}])
    with pytest.raises(UserError, match=r"cols\.csv:2: 'dialogue' is missing"):
        studio.batches.run(no_column, ["longest-3"])
    wrong_type = tmp_path / "notes.txt"
    wrong_type.write_text("hello", encoding="utf-8")
    with pytest.raises(UserError, match="upload a .csv or .jsonl"):
        studio.batches.run(wrong_type, ["longest-3"])
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"dialogue": "x" * (3 * 1024 * 1024)}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="limit is 2 MB"):
        studio.batches.run(big, ["longest-3"])
    many = write_upload(tmp_path / "many.jsonl", [{"dialogue": f"#Person1#: line {i}"} for i in range(201)])
    with pytest.raises(UserError, match="201 dialogues; the limit is 200"):
        studio.batches.run(many, ["longest-3"])
    long = write_upload(tmp_path / "long.jsonl", [{"id": "x1", "dialogue": "y" * 20_001}])
    with pytest.raises(UserError, match="dialogue x1 is 20,001 characters"):
        studio.batches.run(long, ["longest-3"])
    with pytest.raises(UserError, match="Upload a CSV or JSONL"):
        studio.batches.run(None, ["longest-3"])
    latin = tmp_path / "latin.csv"
    latin.write_bytes("dialogue\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        studio.batches.run(latin, ["longest-3"])


def test_benchmark_without_results_shows_published_rows(studio):
    view = studio.results.view()
    assert "No results file" in view.note
    assert [r["source"] for r in view.rows] == ["course lab (published)"] * 3
    table = core.benchmark_table(view)
    assert table.loc[table["model"] == "instruct", "ROUGE-1"].item() == 0.4216
    assert table.loc[table["model"] == "peft-lora", "ROUGE-Lsum"].item() == 0.3249
    assert core.benchmark_figure(view) is not None


def test_benchmark_reads_evaluate_output(setup, tmp_path):
    from summarizer.data import load_split
    from summarizer.evaluation import evaluate, rescore
    from summarizer.generation import DecodingSettings

    registry = Registry.from_file(setup["registry"])
    report = evaluate(registry, ["longest-3", "original"], load_split(str(setup["data"]), "test", limit=2),
                      decoding=DecodingSettings(max_new_tokens=8), progress=False)
    results = report.save(tmp_path / "results.json")
    studio = core.Studio(registry, data_source=str(setup["data"]), results_path=results)
    view = studio.results.view()
    ours = [r for r in view.rows if r["source"] == "this project (evaluate)"]
    assert [r["model"] for r in ours] == ["longest-3", "original"] and ours[0]["n"] == 2
    assert ours[0]["rouge1"] == pytest.approx(report.score("longest-3")["rouge1"])
    assert "2 dialogue(s)" in view.note and "course lab (published)" in view.note
    assert len(core.benchmark_table(view)) == 5
    # The miniature experiment's results also carry the paper's scoring: shown as their own rows.
    paper = rescore(report, load_split(str(setup["data"]), "test", limit=2), reference="summary1",
                    use_stemmer=True)
    document = json.loads(results.read_text(encoding="utf-8"))
    results.write_text(json.dumps({**document, "paper_scoring": {"aggregate": paper.aggregate}}),
                       encoding="utf-8")
    scored = [r for r in studio.results.view().rows if "paper's scoring" in r["description"]]
    assert [r["model"] for r in scored] == ["longest-3", "original"]
    assert scored[0]["rouge1"] == pytest.approx(paper.score("longest-3")["rouge1"])
    results.write_text("{not json", encoding="utf-8")
    assert "could not be read" in studio.results.view().note


def test_results_path_comes_from_server_config_only(setup, monkeypatch, tmp_path):
    monkeypatch.setenv(core.RESULTS_ENV, str(tmp_path / "r.json"))
    studio = core.Studio(Registry.from_file(setup["registry"]), data_source=str(setup["data"]))
    assert studio.results.path == tmp_path / "r.json"
    import inspect
    assert list(inspect.signature(studio.results.view).parameters) == []


# ---------------------------------------------------------------------------------------------
# The real app, served on 127.0.0.1 and called with gradio_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(registry: Path, data: Path, results: Path | None = None, votes: Path | None = None, **build):
    """Build the Blocks from app.py with the environment pointing at test files, serve, close."""
    saved = {k: os.environ.get(k) for k in ("SUMMARIZER_REGISTRY", "DIALOGSUM_PATH", "STUDIO_RESULTS",
                                            "STUDIO_VOTES_DB")}
    os.environ.update(SUMMARIZER_REGISTRY=str(registry), DIALOGSUM_PATH=str(data),
                      STUDIO_RESULTS=str(results or data / "no-results.json"),
                      STUDIO_VOTES_DB=str(votes or os.environ["STUDIO_VOTES_DB"]))
    import app

    demo = None
    try:
        demo = app.build_app(**build)
        port = free_port()
        app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                   quiet=True)
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        if demo is not None:
            demo.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def server(setup):
    with running_app(setup["registry"], setup["data"]) as (demo, url):
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server, verbose=False)


def test_app_serves_on_localhost_with_named_endpoints(client, server):
    assert server.startswith("http://127.0.0.1:")
    info = client.view_api(return_format="dict", print_info=False)
    names = set(info["named_endpoints"])
    assert {"/compare", "/load_example", "/model_status", "/batch", "/benchmark"} <= names


def test_client_compare_three_models(client):
    cards, table, chart, results, notes = client.predict(
        dialogue=DIALOGUE, reference=REFERENCE, models=THREE, shot_mode="few-shot", n_shots=2,
        max_new_tokens=12, api_name="/compare")
    models = {m["model"]: m for m in results["models"]}
    assert list(models) == THREE
    for model in models.values():
        assert model["error"] is None and isinstance(model["summary"], str)
        assert set(model["rouge"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
        assert len(model["shot_ids"]) == 2
    assert models["longest-3"]["summary"]
    assert [row[0] for row in table["data"]] == THREE
    assert chart is not None
    assert 'class="ds-card"' in cards and "3 of 3 model(s) finished" in notes


def test_client_errors_are_one_line_messages(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="dialogue is empty"):
        client.predict(dialogue="  ", models=THREE, api_name="/compare")
    with pytest.raises(AppError, match="limit is 20,000"):
        client.predict(dialogue="x" * 200_000, models=["longest-3"], api_name="/compare")


def test_client_load_example_and_benchmark(client):
    dialogue, reference, topic, index, info = client.predict(
        split="test", how="index", index=1, api_name="/load_example")
    assert dialogue.startswith("#Person1#") and index == 1 and len(reference.split("\n\n")) == 3
    note, table, chart = client.predict(api_name="/benchmark")
    assert "No results file" in note and len(table["data"]) == 3


def test_client_batch_returns_a_csv(client, tmp_path):
    from gradio_client import handle_file

    path = write_upload(tmp_path / "upload.csv",
                        [{"dialogue": r["dialogue"], "summary": r["summary"]} for r in synthetic_pairs(2)])
    status, summary, rows, csv_file = client.predict(
        file=handle_file(str(path)), models=["longest-3", "peft-lora"], max_new_tokens=8,
        api_name="/batch")
    assert "Summarized 2 dialogue(s)" in status
    assert Path(csv_file).suffix == ".csv"
    with open(csv_file, encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == 4 and {r["model"] for r in written} == {"longest-3", "peft-lora"}
    assert all(r["rouge1"] for r in written)


def test_full_queue_answers_busy_try_again(setup):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    with running_app(setup["registry"], setup["data"], queue_size=1) as (demo, url):
        client = Client(url, verbose=False)
        jobs = [client.submit(dialogue=DIALOGUE, models=["original", "instruct", "peft-lora"],
                              num_beams=4, max_new_tokens=100, api_name="/compare") for _ in range(4)]
        outcomes = []
        for job in jobs:
            try:
                job.result(timeout=120)
                outcomes.append("ok")
            except (QueueError, AppError) as err:  # the app's own "busy" refusal is an AppError
                outcomes.append(str(err))
        assert "ok" in outcomes, outcomes  # whichever arrived first ran
        assert any("Please try again" in o for o in outcomes), outcomes


def test_client_upload_over_the_limit_is_refused(client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"dialogue": "x" * (3 * 1024 * 1024)}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="exceeds the maximum file size of 2097152 bytes"):
        client.predict(file=handle_file(str(big)), models=["longest-3"], api_name="/batch")


def test_app_start_leaves_no_temporary_folder(tmp_path):
    """Each Studio's own output folder (dialogsum-studio-*) is removed when the process exits."""
    script = ("import tempfile\nfrom summarizer import studio as core\n"
              "s = core.Studio(); assert s.output_dir.is_dir()\n"
              "assert s.output_dir.parent == __import__('pathlib').Path(tempfile.gettempdir())\n"
              "(s.output_dir / 'batch.csv').write_text('x')\nprint(s.output_dir)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "STUDIO_VOTES_DB": str(tmp_path / "v.sqlite3")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    made = Path(done.stdout.strip().splitlines()[-1])
    assert made.name.startswith("dialogsum-studio-") and made.parent == tmp_path
    assert not list(tmp_path.glob("dialogsum-studio-*")), "the folder outlived the process"


def test_page_says_votes_last_until_restart_on_a_space_without_storage(tmp_path, monkeypatch, tiny_models):
    from webui import create_interface

    def intro(env: dict) -> str:
        for key in ("SPACE_ID", "STUDIO_VOTES_DB"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        studio = core.Studio(Registry.from_file(write_registry(tmp_path / "models.toml", tiny_models)),
                             data_source=str(write_release_folder(tmp_path / "dialogsum")),
                             votes=VoteStore(tmp_path / "votes.sqlite3"))
        config = create_interface(studio).get_config_file()
        return next(c["props"]["value"] for c in config["components"] if c["props"].get("elem_id") == "vote-intro")

    assert "until this Space restarts" in intro({"SPACE_ID": "someone/studio"})
    assert "restarts" not in intro({})
    assert "restarts" not in intro({"SPACE_ID": "someone/studio", "STUDIO_VOTES_DB": str(tmp_path / "votes.sqlite3")})
