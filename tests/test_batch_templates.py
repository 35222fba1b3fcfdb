"""The Batch tab's prompt templates: models x templates over an upload or a DialogSum split, the
per-dialogue matrix and its "only where the summaries differ" filter, the self-contained HTML and
JSON exports; the Benchmark tab's rows per template; /batch with `prompts` over the API."""

from __future__ import annotations

import csv
import json
import os
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import synthetic_pairs
from summarizer import studio as core
from summarizer.data import Example
from summarizer.errors import UserError
from summarizer.registry import Registry
from summarizer.studio.batch_matrix import build_matrix, render_matrix
from summarizer.templates import MAX_TEMPLATE_CHARS, custom_name
from test_app import FAST, add_broken_model, running_app, write_upload
from helpers import write_registry, write_release_folder

WRITTEN = "Summarize this chat in one short sentence:\n{dialogue}\nSummary:"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("batch-templates")
    registry = add_broken_model(write_registry(root / "models.toml", tiny_models))
    return {"root": root, "registry": registry, "data": write_release_folder(root / "dialogsum")}


@pytest.fixture(scope="module")
def studio(setup):
    return core.Studio(Registry.from_file(setup["registry"]), data_source=str(setup["data"]),
                       results_path=setup["root"] / "no-results.json", output_dir=setup["root"] / "outputs")


def upload(tmp_path: Path, count: int = 3) -> Path:
    rows = [{"id": r["id"], "dialogue": r["dialogue"], "summary": r["summary"]} for r in synthetic_pairs(count)]
    return write_upload(tmp_path / "mine.csv", rows)


def test_every_model_runs_in_every_template(studio, tmp_path):
    seen = []
    output = studio.batches.run(upload(tmp_path), ["longest-3", "original"], decoding=core.decoding_settings(**FAST),
                                progress=lambda fraction, desc: seen.append((fraction, desc)),
                                templates=["experiment", WRITTEN])
    written = custom_name(WRITTEN)
    assert len(output.rows) == 3 * 2 * 2
    pairs = [(r["model"], r["template"]) for r in output.rows]
    expected = [(m, t) for m in ("longest-3", "original") for t in ("experiment", written)]
    assert list(dict.fromkeys(pairs)) == expected and all(pairs.count(p) == 3 for p in expected)
    assert all(r["rouge1"] is not None and not r["error"] for r in output.rows)
    assert [(s["model"], s["template"], s["summaries"], s["scored"]) for s in output.summary] == \
        [(m, t, 3, 3) for m, t in expected]
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "12/12 summaries")
    assert f"in 2 template(s) (experiment, {written})" in output.message
    with output.csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["model"], r["template"]) for r in rows} == set(expected)
    summary, table = core.batch_tables(output)
    assert list(summary.columns[:2]) == ["model", "template"] and len(summary) == 4
    assert set(table["template"]) == {"experiment", written}

    matrix = output.matrix
    assert matrix.columns == tuple(expected)
    assert [r.id for r in matrix.rows] == ["syn_0", "syn_1", "syn_2"]
    by_key = {(r["id"], r["model"], r["template"]): r["summary"] for r in output.rows}
    for row in matrix.rows:
        assert [c.summary for c in row.cells] == [by_key[(row.id, m, t)] for m, t in matrix.columns]
    # The extractive baseline copies turns, whatever the prompt: its two columns always agree.
    assert all(row.cells[0].summary == row.cells[1].summary for row in matrix.rows)


def test_no_template_runs_each_models_default_and_identical_columns_never_differ(studio, tmp_path):
    output = studio.batches.run(upload(tmp_path, 2), ["longest-3"], templates=["experiment", "flan-briefly"])
    assert output.matrix.differing == 0 and output.matrix.only_differing().rows == ()
    assert 'data-rows="0"' in render_matrix(output.matrix.only_differing())
    default = studio.batches.run(upload(tmp_path, 2), ["longest-3"])
    assert {r["template"] for r in default.rows} == {"experiment"}
    assert "each model's default template" in default.message


def test_the_differ_filter_keeps_only_dialogues_whose_summaries_differ():
    examples = [Example(id=i, dialogue=f"#Person1#: {i}", references=("ref",)) for i in ("same", "differ", "error")]
    rows = []
    for model, template, texts in [("a", "experiment", ("x", "y", "z")), ("a", "flan-briefly", ("x ", "y2", "z")),
                                   ("b", "experiment", ("x", "y", None))]:
        for example, text in zip(examples, texts):
            rows.append({"id": example.id, "model": model, "template": template, "summary": text or "",
                         "rouge1": 0.5 if text else None, "error": "" if text else "out of memory"})
    matrix = build_matrix(rows, examples, "mine.csv")
    assert [r.differs for r in matrix.rows] == [False, True, True]
    kept = matrix.only_differing()
    assert [r.id for r in kept.rows] == ["differ", "error"] and kept.filtered and kept.columns == matrix.columns
    page = render_matrix(kept)
    assert page.count('class="ds-row"') == 2 and "out of memory" in page and ">same<" not in page
    # A dialogue a model left out (no row) differs too, and shows as a missing cell.
    partial = build_matrix(rows[:-1], examples, "mine.csv")
    assert partial.rows[2].cells[2] is None and partial.rows[2].differs


def test_a_dialogue_split_is_a_source(studio, tmp_path, setup):
    output = studio.batches.run(None, ["longest-3"], split="validation", limit=3, templates=["flan-briefly"])
    assert [r["id"] for r in output.rows] == ["dev_0", "dev_1", "dev_2"]
    assert all(r["template"] == "flan-briefly" and r["rouge1"] is not None for r in output.rows)
    assert output.message.startswith("Summarized 3 dialogue(s) from DialogSum validation (first 3)")
    assert output.matrix.source == "DialogSum validation (first 3)"
    # The uploaded file is not read when a split is chosen; a limit past the split's end takes it all.
    whole = studio.batches.run(upload(tmp_path), ["longest-3"], split="test", limit=200)
    assert [r["id"] for r in whole.rows] == [f"test_{i}" for i in range(4)]
    assert all(len(r["references"].split(" || ")) == 3 for r in whole.rows)
    for limit, message in [(0, "1 to 200"), (201, "1 to 200"), ("many", "must be a number")]:
        with pytest.raises(UserError, match=message):
            studio.batches.run(None, ["longest-3"], split="test", limit=limit)
    for split in ("train", str(setup["data"] / "dialogsum.test.jsonl"), "/etc/passwd"):
        with pytest.raises(UserError, match="uploaded file or the DialogSum validation or test split"):
            studio.batches.run(None, ["longest-3"], split=split)
    with pytest.raises(UserError, match="Upload a CSV or JSONL"):
        studio.batches.run(None, ["longest-3"], split="file")


def test_templates_are_refused_in_one_line(studio, tmp_path):
    path = upload(tmp_path, 1)
    cases = [(["experiment", "flan-briefly", "flan-going-on", WRITTEN], "at most 3 prompt templates"),
             (["Summarize the chat below, please, in a few words"], "exactly once"),
             (["{dialogue} and again {dialogue}"], "exactly once"),
             (["{dialogue}" + "x" * MAX_TEMPLATE_CHARS], f"at most {MAX_TEMPLATE_CHARS} characters"),
             (["flan-brief"], "unknown prompt template 'flan-brief'")]
    for templates, message in cases:
        with pytest.raises(UserError, match=message) as caught:
            studio.batches.run(path, ["longest-3"], templates=templates)
        assert "\n" not in str(caught.value)
    # The same template twice (by name and by its text) is one column; blank entries are none.
    output = studio.batches.run(path, ["longest-3"], templates=["experiment", core_text("experiment"), "  "])
    assert {r["template"] for r in output.rows} == {"experiment"}


def core_text(name: str) -> str:
    from summarizer.templates import BUILTIN
    return BUILTIN[name].text


def test_templates_cannot_multiply_a_run_past_the_largest_one(studio, tmp_path):
    rows = [{"id": f"r{i}", "dialogue": f"#Person1#: line {i}\n#Person2#: ok"} for i in range(200)]
    path = write_upload(tmp_path / "many.jsonl", rows)
    with pytest.raises(UserError, match=r"200 dialogue\(s\) x 9 model/template column\(s\) is 1,800 summaries; "
                                        r"the limit is 1,600"):
        studio.batches.run(path, ["longest-3", "original", "instruct"],
                           templates=["experiment", "flan-briefly", WRITTEN])


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_export_escapes_everything_and_stands_alone(studio, tmp_path):
    rows = [{"id": "x<img src=x onerror=alert(2)>", "topic": "<b>topic</b>",
             "dialogue": f"#Person1#: {SCRIPT} look at this long line of text please\n#Person2#: fine & \"ok\"",
             "summary": "<i>a reference</i>"}]
    path = write_upload(tmp_path / "hostile.csv", rows)
    output = studio.batches.run(path, ["longest-3"], templates=["experiment", WRITTEN])
    assert any(SCRIPT in r["summary"] for r in output.rows)  # the baseline copied the turn
    page = output.html_path.read_text(encoding="utf-8")
    assert output.html_path.suffix == ".html" and output.html_path.parent == output.csv_path.parent
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
    assert SCRIPT not in page and "<img" not in page and "<i>a reference" not in page and "<b>topic" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = _Tags()
    parsed.feed(page)
    assert not {"script", "img", "link", "iframe", "object", "embed", "base"} & set(parsed.tags)
    assert not [a for a in parsed.attributes if a[1] in ("src", "href") or a[1].startswith("on")]
    assert "http://" not in page and "https://" not in page and "@import" not in page and "url(" not in page
    text = "".join(parsed.text)
    assert SCRIPT in text and "x<img src=x onerror=alert(2)>" in text and "<i>a reference</i>" in text
    assert custom_name(WRITTEN) in text

    exported = json.loads(output.json_path.read_text(encoding="utf-8"))
    assert [c["template"] for c in exported["columns"]] == ["experiment", custom_name(WRITTEN)]
    assert exported["rows"][0]["id"] == "x<img src=x onerror=alert(2)>" and exported["rows"][0]["differs"] is False
    assert [c["summary"] for c in exported["rows"][0]["cells"]] == [r["summary"] for r in output.rows]


def test_old_result_folders_are_cleaned_whole(studio, tmp_path):
    first = studio.batches.run(upload(tmp_path, 1), ["longest-3"])
    folder = first.csv_path.parent
    assert sorted(p.suffix for p in folder.iterdir()) == [".csv", ".html", ".json"]
    old = time.time() - 7200
    os.utime(folder, (old, old))
    second = studio.batches.run(upload(tmp_path, 1), ["longest-3"])
    assert not folder.exists() and second.html_path.is_file()


def test_benchmark_has_a_row_per_template(studio, tmp_path):
    results = tmp_path / "results.json"
    scores = {"rouge1": 0.3, "rouge2": 0.1, "rougeL": 0.25, "rougeLsum": 0.25, "n": 4}
    results.write_text(json.dumps({"settings": {"n_examples": 4}, "aggregate": [
        {"model": "original", "shots": 0, **scores},  # written before templates
        {"model": "original", "shots": 0, "template": "flan-briefly", **scores, "rouge1": 0.2},
        {"model": "instruct", "shots": 1, "template": "custom-0123abcd", **scores}]}), encoding="utf-8")
    view = core.BenchmarkResults(results).view()
    ours = [r for r in view.rows if r["source"] != "course lab (published)"]
    assert [(r["model"], r["template"]) for r in ours] == [
        ("original", "experiment"), ("original", "flan-briefly"), ("instruct", "custom-0123abcd")]
    assert "3 model/template/shot row(s) in 3 prompt template(s)" in view.note
    table = core.benchmark_table(view)
    assert list(table.columns[:4]) == ["source", "model", "template", "setting"]
    assert table.loc[table["template"] == "flan-briefly", "ROUGE-1"].item() == 0.2
    assert table["template"].isna().sum() == 3  # the course's rows used the lab's own prompt
    figure = core.benchmark_figure(view)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert "original (flan-briefly, 0-shot, ours)" in labels and "original (experiment, 0-shot, ours)" in labels


# --- over the API -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(setup):
    from gradio_client import Client

    with running_app(setup["registry"], setup["data"]) as (demo, url):
        yield Client(url, verbose=False)


def test_client_batch_with_two_templates(client, tmp_path):
    from gradio_client import handle_file

    status, summary, rows, csv_file = client.predict(
        file=handle_file(str(upload(tmp_path, 2))), models=["longest-3", "peft-lora"], max_new_tokens=8,
        prompts=["flan-briefly", WRITTEN], api_name="/batch")
    assert "Summarized 2 dialogue(s)" in status and "in 2 template(s)" in status
    got = [dict(zip(rows["headers"], r)) for r in rows["data"]]
    assert len(got) == 2 * 2 * 2
    assert {(r["model"], r["template"]) for r in got} == {
        (m, t) for m in ("longest-3", "peft-lora") for t in ("flan-briefly", custom_name(WRITTEN))}
    assert len(summary["data"]) == 4 and "template" in summary["headers"]
    with open(csv_file, encoding="utf-8") as handle:
        assert {r["template"] for r in csv.DictReader(handle)} == {"flan-briefly", custom_name(WRITTEN)}


def test_client_batch_from_a_split_and_its_refusals(client):
    from gradio_client.exceptions import AppError

    status, summary, rows, csv_file = client.predict(
        models=["longest-3"], split="validation", limit=2, api_name="/batch")  # no file needed
    assert status.startswith("Summarized 2 dialogue(s) from DialogSum validation (first 2)")
    assert [r[0] for r in rows["data"]] == ["dev_0", "dev_1"]
    with pytest.raises(AppError, match="exactly once"):
        client.predict(file=None, models=["longest-3"], split="test", written_prompt="no placeholder in this text at all",
                       api_name="/batch")
    with pytest.raises(AppError, match="greater than maximum value 200"):  # the slider's own bound
        client.predict(file=None, models=["longest-3"], split="test", limit=500, api_name="/batch")
    with pytest.raises(AppError, match="at most 3 prompt templates"):
        client.predict(file=None, models=["longest-3"], split="test", written_prompt=WRITTEN,
                       prompts=["experiment", "flan-briefly", "flan-going-on"], api_name="/batch")


def test_the_tab_renders_the_kept_run_filtered_or_whole(studio, tmp_path):
    from webui.components.batch import BatchHandlers

    handlers = BatchHandlers(studio)
    assert handlers.matrix(None, True) == ("", None, None)
    output = studio.batches.run(upload(tmp_path, 2), ["longest-3"], templates=["experiment", WRITTEN])
    whole, html_file, json_file = handlers.matrix(output, False)
    assert whole.count('class="ds-row"') == 2 and html_file == str(output.html_path)
    assert json_file == str(output.json_path)
    filtered, *_ = handlers.matrix(output, True)
    assert filtered.count('class="ds-row"') == 0 and "every model and template wrote the same summary" in filtered
    output.html_path.unlink()  # cleaned away after an hour: the page keeps the matrix, offers no file
    assert handlers.matrix(output, False)[1] is None
