"""The fast decode loop (summarizer.fast_decode) gives exactly what `model.generate` gives.

Tiny random T5 models (conftest.py): plain batches with padding, a mixed batch of base and LoRA
rows, a soft prompt in front of the input embeddings; greedy and beam search; the n-gram guard,
min_new_tokens and an EOS that ends some rows early; and streaming through `summarize`.
"""

from __future__ import annotations

import pytest
import torch

from summarizer import fast_decode
from summarizer.generation import DecodingSettings, summarize
from summarizer.registry import Registry

from helpers import synthetic_pairs

PROMPTS = [pair["dialogue"] for pair in synthetic_pairs(3, seed=5)]
PROMPTS[1] = PROMPTS[1] + "\n" + PROMPTS[2]  # rows of different lengths: the batch is padded


@pytest.fixture(scope="module")
def plain(tiny_models):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    return (AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]).eval(),
            AutoTokenizer.from_pretrained(tiny_models["base"]))


def _both(model, inputs, **kwargs):
    with torch.inference_mode():
        expected = model.generate(**inputs, **kwargs)
        got = fast_decode.generate(model, **inputs, **kwargs)
    return expected, got


def _with_soft_prompt(model, tokenizer, texts, seed: int, tokens: int = 4) -> dict:
    """generate's inputs for `texts` behind a random soft prompt of `tokens` vectors (as PEFT's
    prompt tuning feeds the encoder)."""
    encoded = tokenizer(texts, return_tensors="pt", padding=True)
    embeds = model.get_input_embeddings()(encoded["input_ids"])
    prompt = torch.randn(tokens, embeds.shape[-1], generator=torch.Generator().manual_seed(seed))
    return {"inputs_embeds": torch.cat([prompt.expand(len(texts), -1, -1), embeds], dim=1),
            "attention_mask": torch.cat([torch.ones(len(texts), tokens, dtype=torch.long),
                                         encoded["attention_mask"]], dim=1)}


def _an_eos_it_will_meet(model, inputs, new_tokens: int) -> int:
    """A token greedy decoding picks for row 0 at step 3: as EOS it ends that row early."""
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    return int(out[0, 3])


@pytest.mark.parametrize("beams", [1, 3])
def test_plain_batch_matches_generate(plain, beams):
    model, tokenizer = plain
    inputs = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    assert inputs["attention_mask"].min() == 0  # padded
    for kwargs in (dict(max_new_tokens=12, min_new_tokens=12),
                   dict(max_new_tokens=12, min_new_tokens=5, no_repeat_ngram_size=2),
                   dict(max_new_tokens=12, eos_token_id=_an_eos_it_will_meet(model, inputs, 12))):
        expected, got = _both(model, inputs, num_beams=beams, **kwargs)
        assert got.tolist() == expected.tolist(), kwargs


def test_early_eos_pads_finished_rows(plain):
    model, tokenizer = plain
    inputs = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    eos = _an_eos_it_will_meet(model, inputs, 12)
    expected, got = _both(model, inputs, max_new_tokens=12, eos_token_id=eos)
    row = got[0].tolist()
    first = row.index(eos)
    assert first <= 4 and len(row) > first + 1 and set(row[first + 1:]) == {model.generation_config.pad_token_id}
    assert got.tolist() == expected.tolist()


def test_model_generation_config_defaults_apply(plain):
    """The mini models set no_repeat_ngram_size in generation_config.json: honoured as generate does."""
    model, tokenizer = plain
    inputs = tokenizer(PROMPTS[:1], return_tensors="pt")
    model.generation_config.no_repeat_ngram_size = 2
    try:
        expected, got = _both(model, inputs, max_new_tokens=20, min_new_tokens=20)
        _, unguarded = _both(model, inputs, max_new_tokens=20, min_new_tokens=20, no_repeat_ngram_size=0)
    finally:
        model.generation_config.no_repeat_ngram_size = None
    assert got.tolist() == expected.tolist()
    pairs = list(zip(got[0, :-1].tolist(), got[0, 1:].tolist()))
    assert len(pairs) == len(set(pairs))  # no 2-gram twice
    assert unguarded.shape == got.shape


def test_settings_generate_handles_differently_are_refused(plain):
    model, _ = plain
    for kwargs in (dict(do_sample=True), dict(repetition_penalty=1.3), dict(num_return_sequences=2)):
        with pytest.raises(fast_decode.Unsupported):
            fast_decode.settings(model, **kwargs)


@pytest.mark.parametrize("beams", [1, 2])
def test_lora_rows_match_generate(tiny_models, beams):
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["base"])
    peft = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]),
                                     tiny_models["lora"], adapter_name="lora").eval()
    inputs = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=10, min_new_tokens=10, num_beams=beams)
    expected, got = _both(peft, inputs, **kwargs)  # the adapter on every row
    assert got.tolist() == expected.tolist()
    with peft.disable_adapter():  # the base rows: the whole-step kernel, past PEFT's wrappers
        base, base_fast = _both(peft, inputs, **kwargs)
    assert base_fast.tolist() == base.tolist()
    assert base.tolist() != expected.tolist()  # the adapter matters
    if beams == 1:  # a mixed batch: base, LoRA, base (the registry never mixes with beams)
        names = ["__base__", "lora", "__base__"]
        expected, got = _both(peft, {**inputs, "adapter_names": names}, **kwargs)
        assert got.tolist() == expected.tolist()
        assert got[1].tolist() != got[0].tolist()


@pytest.mark.parametrize("beams", [1, 2])
def test_soft_prompt_matches_generate(plain, beams):
    model, tokenizer = plain
    inputs = _with_soft_prompt(model, tokenizer, PROMPTS, seed=0)
    expected, got = _both(model, inputs, max_new_tokens=10, min_new_tokens=10, num_beams=beams)
    assert got.tolist() == expected.tolist()


def test_summarize_same_with_either_engine_and_streams(registry_file, monkeypatch):
    from helpers import synthetic_pairs as pairs
    from summarizer.data import Example

    examples = [Example(id=f"d{i}", dialogue=p["dialogue"]) for i, p in enumerate(pairs(3, seed=9))]
    names = ["original", "peft-lora", "peft-prompt", "instruct"]
    decoding = DecodingSettings(max_new_tokens=8, min_new_tokens=8, batch_size=4)
    registry = Registry.from_file(registry_file)
    streamed: dict[tuple, list[str]] = {}
    fast = summarize(registry, names, examples, decoding=decoding,
                     on_partial=lambda m, e, text: streamed.setdefault((m, e), []).append(text))
    monkeypatch.setenv(fast_decode.DECODER_ENV, "generate")
    slow = summarize(registry, names, examples, decoding=decoding)
    assert [r.error for r in fast] == [None] * len(fast)
    assert [r.summary for r in fast] == [r.summary for r in slow]
    assert all(r.error is None and r.summary for r in fast)
    for result in fast:  # token by token, ending at the final text
        texts = streamed[(result.model, result.example_id)]
        assert len(texts) >= 3 and texts[-1] == result.summary
    monkeypatch.setenv(fast_decode.DECODER_ENV, "fast")
    beams = summarize(registry, names[:3], examples, decoding=DecodingSettings(max_new_tokens=8, num_beams=2))
    monkeypatch.setenv(fast_decode.DECODER_ENV, "generate")
    beams_slow = summarize(registry, names[:3], examples, decoding=DecodingSettings(max_new_tokens=8, num_beams=2))
    assert [r.summary for r in beams] == [r.summary for r in beams_slow]


# ---- The batch path (issue 30): more rows than a block of the C projection, rows of many lengths,
# rows that finish early and are dropped from the batch; plain, LoRA-mixed and soft-prompt rows.

BATCH = [pair["dialogue"] for pair in synthetic_pairs(7, seed=11)]
BATCH[3] = BATCH[3] + "\n" + BATCH[4] + "\n" + BATCH[5]  # a long row among short ones


def _eos_for_some_rows(model, inputs, new_tokens: int) -> int:
    """A token greedy decoding picks early in some rows but not all: as EOS it ends those rows first."""
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    counts: dict[int, int] = {}
    for row in out[:, 1:6].tolist():
        for token in set(row):
            counts[token] = counts.get(token, 0) + 1
    rows = out.shape[0]
    partial = [t for t, n in counts.items() if 1 < n < rows] or [t for t, n in counts.items() if n < rows]
    return max(partial, key=lambda t: counts[t])


def _ends(got, eos: int) -> list[int]:
    return [row.index(eos) if eos in row else len(row) for row in got.tolist()]


@pytest.mark.parametrize("beams", [1, 2])
def test_batch_path_plain_rows_finishing_early_match_generate(plain, beams):
    model, tokenizer = plain
    inputs = tokenizer(BATCH, return_tensors="pt", padding=True)
    eos = _eos_for_some_rows(model, inputs, 12)
    expected, got = _both(model, inputs, max_new_tokens=12, eos_token_id=eos, num_beams=beams,
                          no_repeat_ngram_size=3)
    assert got.tolist() == expected.tolist()
    if beams == 1:
        ends = _ends(got, eos)
        assert min(ends) < max(ends)  # some rows ended while others went on
    decoder = fast_decode._decoder_for(model)
    with torch.inference_mode():  # the encoder ran on the real tokens only, as the model's own would
        packed = decoder.encoder(inputs["input_ids"], None, inputs["attention_mask"], None)
        reference = model.get_encoder()(**inputs).last_hidden_state
    keep = inputs["attention_mask"].bool()
    scale = float(reference[keep].abs().max())
    torch.testing.assert_close(packed[keep], reference[keep], rtol=1e-3, atol=1e-4 * scale)  # float rounding
    assert bool((packed[~keep] == 0).all())


def test_batch_path_lora_mixed_rows_finishing_early_match_generate(tiny_models):
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["base"])
    peft = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]),
                                     tiny_models["lora"], adapter_name="lora").eval()
    inputs = tokenizer(BATCH, return_tensors="pt", padding=True)
    names = ["__base__", "lora"] * 3 + ["lora"]
    with peft.disable_adapter():
        eos = _eos_for_some_rows(peft, inputs, 12)
    expected, got = _both(peft, {**inputs, "adapter_names": names}, max_new_tokens=12, eos_token_id=eos)
    assert got.tolist() == expected.tolist()
    ends = _ends(got, eos)
    assert min(ends) < max(ends)


@pytest.mark.parametrize("beams", [1, 2])
def test_batch_path_soft_prompt_rows_finishing_early_match_generate(plain, beams):
    model, tokenizer = plain
    inputs = _with_soft_prompt(model, tokenizer, BATCH, seed=1)
    eos = _eos_for_some_rows(model, inputs, 10)
    expected, got = _both(model, inputs, max_new_tokens=10, eos_token_id=eos, num_beams=beams)
    assert got.tolist() == expected.tolist()


def test_views_of_unloaded_models_are_freed(tiny_models):
    """The decoder views are held weakly: a model that goes leaves nothing of its weights behind."""
    import gc
    import weakref

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["base"])
    with torch.inference_mode():
        fast_decode.generate(model, **tokenizer(PROMPTS[:1], return_tensors="pt"), max_new_tokens=3)
    assert model in fast_decode._DECODERS
    gone, weight = weakref.ref(model), weakref.ref(model.lm_head.weight)
    del model
    gc.collect()
    assert gone() is None and weight() is None


@pytest.mark.parametrize("beams", [1, 2])
def test_batch_path_op_by_op_drops_finished_rows_and_matches_generate(plain, monkeypatch, beams):
    """Where the C step does not apply (here: kernels off) finished rows leave the per-op state."""
    from summarizer import kernels

    model, tokenizer = plain
    inputs = tokenizer(BATCH, return_tensors="pt", padding=True)
    eos = _eos_for_some_rows(model, inputs, 12)
    monkeypatch.setenv(kernels.KERNELS_ENV, "0")
    fast_decode._DECODERS.clear()
    held = []
    original = fast_decode._Decoder._hold

    def spying(self, state, active):
        positions = original(self, state, active)
        held.append(len(state["held"]))
        return positions
    monkeypatch.setattr(fast_decode._Decoder, "_hold", spying)
    try:
        expected, got = _both(model, inputs, max_new_tokens=12, eos_token_id=eos, num_beams=beams)
    finally:
        fast_decode._DECODERS.clear()
    assert got.tolist() == expected.tolist()
    if beams == 1:
        assert held[0] == len(BATCH) and min(held) < len(BATCH)  # the state shrank as rows ended
