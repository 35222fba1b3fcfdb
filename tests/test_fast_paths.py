"""The fast paths give the same outputs as the plain, obvious ones (tiny models, not timed).

- sorted, batched `summarize`/`evaluate` == one `model.generate` per dialogue;
- a mixed-adapter batch (base + LoRA rows together) == each model alone through plain PEFT;
- the registry's soft-prompt path == PEFT's own PeftModel.generate for prompt tuning;
- backbones decoding concurrently in threads == the same work one batch after another.

So a later change cannot trade correctness for speed without a test failing.
"""

from __future__ import annotations

import pytest

from summarizer.data import Example
from summarizer.errors import ModelLoadError
from summarizer.generation import PARALLEL_ENV, DecodingSettings, summarize
from summarizer.registry import Registry

from helpers import synthetic_pairs

NEW_TOKENS = 10


def _examples(count: int = 7) -> list[Example]:
    """Dialogues of clearly different lengths, so batches are padded and sorting reorders them."""
    rows = synthetic_pairs(count * 3, seed=11)
    examples = []
    for i in range(count):
        parts = [rows[3 * i + j]["dialogue"] for j in range(1 + i % 3)]
        examples.append(Example(id=f"fast_{i}", dialogue="\n".join(parts), references=(rows[3 * i]["summary"],)))
    return examples


def _decoding(batch_size: int = 3) -> DecodingSettings:
    return DecodingSettings(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, batch_size=batch_size)


def _one_at_a_time(model, tokenizer, prompts: list[str]) -> list[str]:
    import torch
    texts = []
    for prompt in prompts:
        encoded = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**encoded, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
        texts.append(tokenizer.decode(out[0, 1:], skip_special_tokens=True).strip())
    return texts


def _plain(folder):
    from transformers import AutoModelForSeq2SeqLM
    return AutoModelForSeq2SeqLM.from_pretrained(folder).eval()


@pytest.fixture
def tokenizer(tiny_models):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_models["base"])


@pytest.fixture
def two_threads():
    """Concurrent backbones split torch's threads; make sure there are two to split."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _by_model(results) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for result in results:
        assert result.error is None, result.error
        out.setdefault(result.model, []).append(result.summary)
    return out


def test_batched_sorted_path_matches_one_generate_per_dialogue(registry_file, tiny_models, tokenizer):
    from summarizer.evaluation import evaluate

    examples = _examples()
    registry = Registry.from_file(registry_file)
    results = summarize(registry, ["original"], examples, decoding=_decoding(batch_size=3))
    assert len({r.batch_size for r in results}) > 1 or results[0].batch_size == 3  # really batched
    naive = _one_at_a_time(_plain(tiny_models["base"]), tokenizer, [r.prompt.text for r in results])
    assert [r.summary for r in results] == naive

    report = evaluate(registry, ["original"], examples, decoding=_decoding(batch_size=4), progress=False)
    assert [row["summary"] for row in report.rows] == naive


def test_mixed_adapter_batch_matches_each_model_alone(registry_file, tiny_models, tokenizer, monkeypatch):
    from peft import PeftModel

    monkeypatch.setenv(PARALLEL_ENV, "0")
    examples = _examples(5)
    registry = Registry.from_file(registry_file)
    results = summarize(registry, ["original", "peft-lora"], examples, decoding=_decoding(batch_size=10))
    assert all(r.batch_size == 10 for r in results)  # one batch mixing base and LoRA rows
    ours = _by_model(results)
    prompts = [r.prompt.text for r in results if r.model == "original"]

    lora = PeftModel.from_pretrained(_plain(tiny_models["base"]), tiny_models["lora"]).eval()
    assert ours["peft-lora"] == _one_at_a_time(lora, tokenizer, prompts)
    assert ours["original"] == _one_at_a_time(_plain(tiny_models["base"]), tokenizer, prompts)
    assert ours["peft-lora"] != ours["original"]  # the adapter really was applied to its rows


def test_soft_prompt_path_matches_peft_prompt_tuning(registry_file, tiny_models, tokenizer):
    import torch
    from peft import PeftModel

    examples = _examples(5)
    registry = Registry.from_file(registry_file)
    results = summarize(registry, ["peft-prompt"], examples, decoding=_decoding(batch_size=2))
    peft = PeftModel.from_pretrained(_plain(tiny_models["base"]), tiny_models["prompt"]).eval()
    expected = []
    for result in results:
        encoded = tokenizer(result.prompt.text, return_tensors="pt")
        with torch.no_grad():
            out = peft.generate(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                                max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
        expected.append(tokenizer.decode(out[0, 1:], skip_special_tokens=True).strip())
    assert [r.summary for r in results] == expected
    plain = summarize(registry, ["original"], examples, decoding=_decoding(batch_size=2))
    assert [r.summary for r in results] != [r.summary for r in plain]  # the soft prompt mattered


def test_concurrent_backbones_match_sequential(registry_file, monkeypatch, two_threads):
    import torch

    names = ["original", "instruct", "peft-lora", "peft-prompt", "longest-3"]
    examples = _examples(4)
    registry = Registry.from_file(registry_file)

    monkeypatch.setenv(PARALLEL_ENV, "0")
    sequential = summarize(registry, names, examples, decoding=_decoding(batch_size=3))
    monkeypatch.setenv(PARALLEL_ENV, "1")
    partial: dict[tuple[str, str], str] = {}
    concurrent = summarize(registry, names, examples, decoding=_decoding(batch_size=3),
                           on_partial=lambda model, ex, text: partial.__setitem__((model, ex), text))

    assert [(r.model, r.example_id) for r in concurrent] == [(m, e.id) for m in names for e in examples]
    assert [r.summary for r in concurrent] == [r.summary for r in sequential]
    assert all(r.error is None for r in concurrent)
    for r in concurrent:
        if r.model != "longest-3":
            assert partial[(r.model, r.example_id)] == r.summary  # streaming still reports every row
    assert torch.get_num_threads() == 2  # the worker threads did not change the caller's setting


def test_int8_opt_in(registry_file, monkeypatch):
    """SUMMARIZER_QUANTIZE=int8 quantizes the Linear layers; LoRA refuses clearly; off by default."""
    import torch
    from summarizer.registry import QUANTIZE_ENV

    examples = _examples(2)
    fp32_registry = Registry.from_file(registry_file)
    linear = fp32_registry.get("original").backbone.model.lm_head
    assert isinstance(linear, torch.nn.Linear) and fp32_registry.get("original").backbone.quantized is None

    monkeypatch.setenv(QUANTIZE_ENV, "int8")
    registry = Registry.from_file(registry_file)
    results = summarize(registry, ["original", "peft-prompt", "peft-lora"], examples, decoding=_decoding())
    backbone = registry.get("original").backbone
    assert backbone.quantized == "int8"
    assert type(backbone.model.lm_head).__name__ == "Linear" and not isinstance(backbone.model.lm_head, torch.nn.Linear)
    by_model = {}
    for r in results:
        by_model.setdefault(r.model, []).append(r)
    assert all(r.error is None and r.summary is not None for r in by_model["original"] + by_model["peft-prompt"])
    assert all(r.error and "fp32" in r.error for r in by_model["peft-lora"])


def test_bf16_opt_in(registry_file, monkeypatch):
    """SUMMARIZER_QUANTIZE=bf16 rounds the weights only: every kind of model still runs, LoRA included."""
    import torch
    from summarizer.registry import QUANTIZE_ENV

    examples = _examples(2)
    names = ["original", "peft-prompt", "peft-lora"]
    monkeypatch.setenv(QUANTIZE_ENV, "bf16")
    registry = Registry.from_file(registry_file)
    backbone = registry.get("original").backbone
    assert backbone.quantized == "bf16" and backbone.model.lm_head.weight.dtype == torch.bfloat16
    together = summarize(registry, names, examples, decoding=_decoding(batch_size=3))
    assert all(r.error is None and r.summary is not None for r in together), [r.error for r in together]
    one_by_one = [summarize(registry, [name], [example], decoding=_decoding())[0]
                  for name in names for example in examples]
    assert [r.summary for r in together] == [r.summary for r in one_by_one]  # LoRA rows mixed with base rows

    monkeypatch.setenv(QUANTIZE_ENV, "fp16")
    with pytest.raises(ModelLoadError, match="'bf16'"):
        Registry.from_file(registry_file).get("original")
