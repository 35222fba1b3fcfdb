"""The summarizer core: data layouts, prompts, ROUGE, registry and generation, on tiny models."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from helpers import synthetic_pairs, write_jsonl, write_registry
from summarizer import rouge
from summarizer.data import Example, load_split
from summarizer.errors import DataError, ModelLoadError, RegistryError, UserError
from summarizer.generation import DecodingSettings, summarize
from summarizer.prompts import (ShotSettings, TokenizerCounter, WordCounter, build_prompt, choose_shots,
                                format_prompt)
from summarizer.registry import Registry

FAST = DecodingSettings(max_new_tokens=6)


# ---------------------------------------------------------------- data

def test_release_folder_keeps_three_references_together(release_folder):
    test = load_split(str(release_folder), "test")
    assert [e.id for e in test] == ["test_0", "test_1", "test_2", "test_3"]
    assert all(len(e.references) == 3 for e in test)
    assert load_split(str(release_folder), "dev")[0].id == "dev_0"
    assert len(load_split(str(release_folder), "train", limit=5)) == 5


def test_hub_layout_merges_repeated_test_dialogues(tmp_path):
    rows = synthetic_pairs(2)
    with (tmp_path / "test.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "dialogue", "summary", "topic"])
        writer.writeheader()
        for i, row in enumerate(rows):
            for k in (1, 2, 3):
                writer.writerow({"id": f"test_{i}_{k}", "dialogue": row["dialogue"],
                                 "summary": f"{row['summary']} ({k})", "topic": row["topic"]})
    examples = load_split(str(tmp_path), "test")
    assert [e.id for e in examples] == ["test_0", "test_1"]
    assert examples[0].references == tuple(f"{rows[0]['summary']} ({k})" for k in (1, 2, 3))


def test_duplicate_dialogues_with_unrelated_ids_keep_their_first_id(tmp_path):
    row = synthetic_pairs(1)[0]
    write_jsonl(tmp_path / "dup.jsonl", [{**row, "id": "syn_3"}, {**row, "id": "syn_50"},
                                         {**row, "dialogue": row["dialogue"] + "!", "id": "syn_7"}])
    assert [e.id for e in load_split(str(tmp_path / "dup.jsonl"), "train")] == ["syn_3", "syn_7"]


def test_hub_id_goes_through_datasets_load_dataset(monkeypatch):
    import datasets
    rows = [{"id": "test_0_1", "dialogue": "#Person1#: hi", "summary": "a", "topic": "t"},
            {"id": "test_0_2", "dialogue": "#Person1#: hi", "summary": "b", "topic": "t"}]
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: calls.append((name, split)) or rows)
    examples = load_split("knkarthick/dialogsum", "dev")
    assert calls == [("knkarthick/dialogsum", "validation")]
    assert examples == [Example("test_0", "#Person1#: hi", ("a", "b"), "t")]


def test_unreachable_hub_is_one_clear_error(monkeypatch):
    import datasets
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the hub\nlong details")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="cannot load 'knkarthick/dialogsum'.*Couldn't reach.*DIALOGSUM_PATH"):
        load_split("knkarthick/dialogsum", "test")


def test_data_source_from_environment(monkeypatch, release_folder):
    monkeypatch.setenv("DIALOGSUM_PATH", str(release_folder))
    assert load_split(None, "test")[0].id == "test_0"


def test_users_own_csv_and_jsonl(tmp_path):
    write_jsonl(tmp_path / "mine.jsonl", [{"dialogue": "A: hi\nB: hello"}, {"dialogue": "A: x", "summary": "s", "id": 7}])
    examples = load_split(str(tmp_path / "mine.jsonl"), "test")
    assert [e.id for e in examples] == ["row-1", "7"] and examples[1].references == ("s",)
    (tmp_path / "mine.csv").write_text('dialogue,summary\n"A: hi\nB: yo",greeting\n', encoding="utf-8")
    assert load_split(str(tmp_path / "mine.csv"), "test")[0].references == ("greeting",)


@pytest.mark.parametrize("content, message", [
    ('{"dialogue": "ok"}\n{"dialogue": "broken"\n', r"bad\.jsonl:2: not valid JSON"),
    ('{"dialogue": "ok"}\n{"summary": "no dialogue"}\n', r"bad\.jsonl:2: 'dialogue' is missing"),
    ('{"dialogue": "   "}\n', r"bad\.jsonl:1: 'dialogue' is empty"),
    ('[1, 2]\n', r"bad\.jsonl:1: expected a JSON object"),
])
def test_malformed_line_names_file_and_line(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_split(str(tmp_path / "bad.jsonl"), "test")


def test_missing_data_folder_and_unknown_split(tmp_path):
    with pytest.raises(DataError, match="data not found"):
        load_split(str(tmp_path / "nowhere"), "test")
    with pytest.raises(DataError, match="unknown split"):
        load_split(str(tmp_path), "holdout")


# ---------------------------------------------------------------- prompts

def test_template_is_the_experiments():
    assert format_prompt("#Person1#: Hi.") == "Summarize the following conversation.\n\n#Person1#: Hi.\n\nSummary: "


def _pool(n=10):
    return [Example(f"train_{i}", r["dialogue"], (r["summary"],), r["topic"]) for i, r in enumerate(synthetic_pairs(n, seed=5))]


def test_shots_never_include_the_dialogue_itself():
    pool = _pool()
    for strategy in ("random", "topic"):
        for target in pool:
            shots = choose_shots(pool, ShotSettings(3, strategy), target)
            assert len(shots) == 3 and target not in shots
    assert choose_shots(pool, ShotSettings(2, "random", seed=1), pool[0]) == \
        choose_shots(pool, ShotSettings(2, "random", seed=1), pool[0])


def test_topic_and_fixed_strategies():
    pool = _pool(30)
    target = pool[0]
    same = [e for e in pool[1:] if e.topic == target.topic]
    shots = choose_shots(pool, ShotSettings(2, "topic"), target)
    assert all(s.topic == target.topic for s in shots) and len(same) >= 2
    fixed = choose_shots(pool, ShotSettings(2, "fixed", ids=("train_4", "train_2")), target)
    assert [s.id for s in fixed] == ["train_4", "train_2"]
    with pytest.raises(UserError, match="train_0"):
        choose_shots(pool, ShotSettings(1, "fixed", ids=("train_0",)), target)


def test_budget_drops_shots_first_then_cuts_the_dialogue():
    counter, pool = WordCounter(), _pool()
    dialogue = pool[0].dialogue
    shots = pool[1:4]
    full = build_prompt(dialogue, shots, counter, max_tokens=10_000)
    assert full.shot_ids == [s.id for s in shots] and not full.notices
    assert full.text.endswith(format_prompt(dialogue)) and full.text.startswith(format_prompt(shots[0].dialogue) + shots[0].summary)
    one_shot_size = counter.count(format_prompt(shots[0].dialogue) + shots[0].summary + "\n\n\n" + format_prompt(dialogue))
    fitted = build_prompt(dialogue, shots, counter, max_tokens=one_shot_size)
    assert fitted.shot_ids == [shots[0].id] and fitted.dropped_shot_ids == [s.id for s in shots[1:]]
    assert fitted.n_tokens <= one_shot_size and "2 shot(s) dropped" in fitted.notices[0]
    cut = build_prompt(dialogue, shots, counter, max_tokens=20)
    assert cut.shot_ids == [] and cut.dialogue_truncated and cut.n_tokens <= 20
    assert cut.text.startswith("Summarize the following conversation.") and cut.text.endswith("Summary: ")


def test_budget_with_a_real_tokenizer(tiny_models):
    from transformers import AutoTokenizer
    counter = TokenizerCounter(AutoTokenizer.from_pretrained(tiny_models["base"]))
    long_dialogue = "\n".join(r["dialogue"] for r in synthetic_pairs(20))
    prompt = build_prompt(long_dialogue, _pool()[:2], counter, max_tokens=120)
    assert prompt.dialogue_truncated and prompt.dropped_shot_ids and counter.count(prompt.text) <= 120


# ---------------------------------------------------------------- ROUGE, worked by hand

def test_rouge_against_hand_computed_values():
    # 3 of 3 unigrams shared minus one: "the cat sat" vs "the cat ran": P = R = 2/3.
    scores = rouge.score("the cat sat", ["the cat ran"])
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(1 / 2)  # bigrams: "the cat" of 2
    assert scores["rougeL"] == pytest.approx(2 / 3)  # LCS "the cat"
    # Unequal lengths: P = 2/2, R = 2/4, F = 2PR/(P+R) = 2/3.
    assert rouge.score("cat sat", ["the cat sat down"])["rouge1"] == pytest.approx(2 / 3)
    # Punctuation and case are ignored by rouge_score's tokenizer.
    assert rouge.score("The CAT, sat!", ["the cat sat"])["rouge1"] == pytest.approx(1.0)


def test_rouge_several_references_take_the_best_and_stemming_is_an_option():
    assert rouge.score("a dog barked", ["the cat sat", "a dog barked"])["rouge2"] == pytest.approx(1.0)
    assert rouge.score("cats running", ["cat runs"])["rouge1"] == 0.0
    assert rouge.score("cats running", ["cat runs"], use_stemmer=True)["rouge1"] == pytest.approx(1.0)
    assert rouge.select_references(["a", "b", "c"], "summary2") == ["b"]
    with pytest.raises(UserError, match="summary3"):
        rouge.select_references(["a"], "summary3")


def test_rouge_aggregate_is_the_mean():
    agg = rouge.aggregate([rouge.score("a b", ["a b"]), rouge.score("c d", ["a b"])])
    assert agg["rouge1"] == pytest.approx(0.5) and agg["n"] == 2


# ---------------------------------------------------------------- registry

def test_registry_statuses_and_lazy_loading(registry_file):
    registry = Registry.from_file(registry_file)
    states = {s.name: s.state for s in registry.statuses()}
    assert states == {"original": "ready", "instruct": "ready", "peft-lora": "ready",
                      "peft-prompt": "ready", "longest-3": "ready"}
    registry.get("peft-lora")
    assert registry.status("peft-lora").state == "loaded"
    assert registry.status("instruct").state == "ready"  # nothing loaded that was not asked for


def test_adapters_share_one_copy_of_the_base(registry_file):
    registry = Registry.from_file(registry_file)
    original, lora, prompt = (registry.get(n) for n in ("original", "peft-lora", "peft-prompt"))
    assert original.backbone is lora.backbone is prompt.backbone
    assert registry.get("instruct").backbone is not original.backbone


@pytest.mark.parametrize("text, message", [
    ("[models.x\nkind=", "not valid TOML"),
    ("[models.x]\nkind = 'gpt'\npath = 'a'\n", "kind must be one of"),
    ("[models.x]\nkind = 'lora'\npath = './a'\n", "needs a base"),
    ("[models.x]\nkind = 'seq2seq'\npath = './a'\ncolour = 'red'\n", "unknown key"),
    ("title = 'nothing'\n", r"no \[models.NAME\] tables"),
])
def test_broken_registry_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message):
        Registry.from_file(path)
    with pytest.raises(RegistryError, match="not found"):
        Registry.from_file(tmp_path / "missing.toml")


def test_unknown_model_name_lists_the_known_ones(registry_file):
    with pytest.raises(RegistryError, match="unknown model 'gpt-9'.*original"):
        Registry.from_file(registry_file).spec("gpt-9")


def test_a_missing_model_does_not_take_the_others_down(tmp_path, tiny_models):
    models = dict(tiny_models, instruct=tmp_path / "gone")
    registry = Registry.from_file(write_registry(tmp_path / "models.toml", models))
    assert registry.status("instruct").state == "error" and "not found" in registry.status("instruct").reason
    example = Example("e", synthetic_pairs(1)[0]["dialogue"], ("x",))
    results = summarize(registry, ["original", "instruct", "longest-3"], [example], decoding=FAST)
    assert results[0].summary and results[2].summary
    assert results[1].summary is None and "not found" in results[1].error


def test_pickle_checkpoints_are_refused(tmp_path, tiny_models):
    import torch
    from safetensors.torch import load_file
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["instruct"], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    registry = Registry.from_file(write_registry(tmp_path / "models.toml", dict(tiny_models, instruct=folder)))
    assert "pickle" in registry.status("instruct").reason
    with pytest.raises(ModelLoadError, match="safetensors only"):
        registry.get("instruct")


def test_model_recovers_when_its_folder_comes_back(tmp_path, tiny_models):
    folder = tmp_path / "instruct"
    shutil.copytree(tiny_models["instruct"], folder)
    registry = Registry.from_file(write_registry(tmp_path / "models.toml", dict(tiny_models, instruct=folder)))
    example = Example("e", synthetic_pairs(1)[0]["dialogue"], ("x",))
    before = summarize(registry, ["instruct"], [example], decoding=FAST)[0].summary
    shutil.move(folder, tmp_path / "aside")
    assert summarize(registry, ["instruct"], [example], decoding=FAST)[0].error
    assert registry.status("instruct").state == "error"
    shutil.move(tmp_path / "aside", folder)
    assert summarize(registry, ["instruct"], [example], decoding=FAST)[0].summary == before
    assert registry.status("instruct").state == "loaded"


# ---------------------------------------------------------------- generation

def _examples(n=3):
    return [Example(r["id"], r["dialogue"], (r["summary"],), r["topic"]) for r in synthetic_pairs(n, seed=9)]


def test_every_model_kind_summarizes_with_timing_and_prompt(registry_file):
    registry = Registry.from_file(registry_file)
    names = registry.names()
    results = summarize(registry, names, _examples(2), decoding=FAST)
    assert [(r.model, r.example_id) for r in results] == [(n, e.id) for n in names for e in _examples(2)]
    for r in results:
        assert r.error is None and r.summary is not None and r.prompt.text.startswith("Summarize")
        assert r.input_tokens > 0 and r.seconds >= 0
    model_rows = [r for r in results if r.model != "longest-3"]
    assert all(0 < r.output_tokens <= 6 for r in model_rows)
    # The adapters really change what the base says.
    by_model = {m: [r.summary for r in results if r.model == m] for m in names}
    assert by_model["peft-lora"] != by_model["original"] and by_model["peft-prompt"] != by_model["original"]


def test_streamed_text_ends_as_the_summary(registry_file):
    registry = Registry.from_file(registry_file)
    seen = {}
    results = summarize(registry, ["original", "peft-lora"], _examples(2), decoding=FAST,
                        on_partial=lambda model, example_id, text: seen.__setitem__((model, example_id), text))
    for r in results:
        assert seen[(r.model, r.example_id)] == r.summary


def test_few_shot_needs_a_pool_and_empty_dialogue_is_refused(registry_file):
    registry = Registry.from_file(registry_file)
    with pytest.raises(UserError, match="shot pool|solved examples"):
        summarize(registry, ["longest-3"], _examples(1), shots=ShotSettings(1))
    with pytest.raises(UserError, match="empty dialogue"):
        summarize(registry, ["longest-3"], [Example("e", "  \n ")])


def test_longest_three_keeps_dialogue_order():
    from summarizer.baseline import longest_utterances
    dialogue = "#P1#: a b\n#P2#: a b c d e\n#P1#: a\n#P2#: a b c\n#P1#: a b c d"
    assert longest_utterances(dialogue) == "#P2#: a b c d e\n#P2#: a b c\n#P1#: a b c d"


# ---------------------------------------------------------------- hub models, offline

def _fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """The layout huggingface_hub keeps: models--owner--name/{refs/main, snapshots/<sha>/...}."""
    sha = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)


def test_cached_hub_models_load_offline_without_waiting_for_the_hub(tmp_path, tiny_models, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "someone/tiny-t5", tiny_models["base"])
    _fake_hub_cache(cache, "someone/tiny-lora", tiny_models["lora"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    (tmp_path / "models.toml").write_text(
        '[models.original]\nkind = "seq2seq"\npath = "someone/tiny-t5"\n'
        '[models.lora]\nkind = "lora"\npath = "someone/tiny-lora"\nbase = "someone/tiny-t5"\n'
        '[models.uncached]\nkind = "seq2seq"\npath = "someone/elsewhere"\n')
    asked = []
    def unreachable(self, repo_id, **kwargs):
        asked.append(repo_id)
        raise ConnectionError("Name or service not known")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    registry = Registry.from_file(tmp_path / "models.toml")
    assert registry.status("original").state == "ready" and "someone/tiny-t5" in asked
    uncached = registry.status("uncached")
    assert uncached.state == "error" and "not in the local cache and the hub is unreachable" in uncached.reason
    example = Example("e", synthetic_pairs(1)[0]["dialogue"])
    results = summarize(registry, ["original", "lora", "uncached"], [example], decoding=FAST)
    assert results[0].summary and results[1].summary and "not in the local cache" in results[2].error
    assert registry.get("original").backbone is registry.get("lora").backbone
    assert registry.status("lora").state == "loaded"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE is set" in Registry.from_file(tmp_path / "models.toml").status("uncached").reason


def test_repetition_blocking_comes_from_the_folder_unless_the_settings_say_otherwise(tmp_path, tiny_models):
    """The mini models ship no_repeat_ngram_size in generation_config.json; `--no-repeat-ngram-size`
    (DecodingSettings) overrides it, 0 turning it off."""
    folder = tmp_path / "instruct"
    shutil.copytree(tiny_models["instruct"], folder)
    config_file = folder / "generation_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    config_file.write_text(json.dumps({**config, "no_repeat_ngram_size": 1}))
    registry = Registry.from_file(write_registry(tmp_path / "models.toml", dict(tiny_models, instruct=folder)))
    tokenizer = registry.get("instruct").tokenizer
    long = DecodingSettings(max_new_tokens=24, min_new_tokens=24)

    def tokens(decoding):
        summary = summarize(registry, ["instruct"], _examples(1), decoding=decoding)[0].summary
        return tokenizer(summary, add_special_tokens=False).input_ids

    blocked = tokens(long)
    assert len(set(blocked)) == len(blocked), "the folder's no_repeat_ngram_size=1 applies"
    free = tokens(dataclasses.replace(long, no_repeat_ngram_size=0))
    assert len(set(free)) < len(free), "a random-weight model repeats itself once blocking is off"
    with pytest.raises(UserError, match="no_repeat_ngram_size"):
        DecodingSettings(no_repeat_ngram_size=-1)
