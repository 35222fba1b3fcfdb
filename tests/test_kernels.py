"""The compiled CPU decode kernels (summarizer/kernels) compute what torch computes.

Each kernel against the torch ops it replaces, to float rounding; the library builds once into
the cache folder and is found there again; switched off, every kernel declines and the decode
loop falls back to torch's ops with the same tokens.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from summarizer import kernels

pytestmark = pytest.mark.skipif(kernels.library() is None, reason="no C compiler here: kernels fall back to torch")


def test_linear_matches_f_linear_for_decode_batch_sizes():
    torch.manual_seed(0)
    weight = torch.randn(1030, 96)  # an output count that is not a multiple of the 4-row block
    for rows in (1, 3, kernels.MAX_ROWS):
        x = torch.randn(rows, 1, 96)
        got = kernels.linear(x, weight)
        assert got.shape == (rows, 1, 1030)
        torch.testing.assert_close(got, torch.nn.functional.linear(x, weight), rtol=1e-5, atol=1e-4)
    assert kernels.linear(torch.randn(kernels.MAX_ROWS + 1, 96), weight) is None  # MKL's GEMM there
    assert kernels.linear(torch.randn(2, 96, dtype=torch.float64), weight.double()) is None


def test_attention_matches_sdpa_with_bias_and_mask():
    torch.manual_seed(1)
    rows, heads, length, d = 2, 3, 7, 16
    cache = torch.randn(2, rows, heads, length + 5, d)  # a preallocated cache, partly filled
    keys, values = cache[0, :, :, :length], cache[1, :, :, :length]
    q = torch.randn(rows, 1, heads * d)
    bias = torch.randn(1, heads, 1, length)
    masked = bias.expand(rows, heads, 1, length).clone()
    masked[1, :, :, -2:] = torch.finfo(torch.float32).min  # padding in row 1
    for b in (bias, masked):
        expected = torch.nn.functional.scaled_dot_product_attention(
            q.view(rows, 1, heads, d).transpose(1, 2), keys, values, attn_mask=b, scale=1.0)
        got = kernels.attend(q, keys, values, b)
        torch.testing.assert_close(got, expected.transpose(1, 2).reshape(rows, 1, -1), rtol=1e-5, atol=1e-5)
    by_dimension = cache[0].transpose(2, 3).contiguous().transpose(2, 3)[:, :, :length]
    assert kernels.attend(q, by_dimension, by_dimension, bias) is None  # keys not laid out by position
    with pytest.raises(kernels.KernelArgumentError):  # a shape that does not fit: refused before C
        kernels.attend(q, keys.transpose(2, 3), values, bias)


def test_rms_norm_and_gated_gelu_match_transformers():
    from transformers.activations import NewGELUActivation
    from transformers.models.t5.modeling_t5 import T5LayerNorm

    torch.manual_seed(2)
    norm = T5LayerNorm(64, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(3, 1, 64)
    torch.testing.assert_close(kernels.rms_norm(x, norm.weight.detach(), 1e-6), norm(x).detach())
    gate, up = torch.randn(2, 1, 200), torch.randn(2, 1, 200)
    expected = NewGELUActivation()(gate) * up
    assert kernels.gelu_gate(gate, up) is True
    torch.testing.assert_close(gate, expected, rtol=1e-5, atol=1e-6)


def test_builds_once_into_the_cache_and_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = kernels._build(kernels._compiler())
    assert built.parent == tmp_path / "dialogsum-studio" / "kernels" and built.is_file()
    stamp = built.stat().st_mtime_ns
    assert kernels._build(kernels._compiler()) == built and built.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in built.parent.iterdir()) == sorted([built.name, "build.lock"])  # no partial file


def test_switched_off_the_kernels_decline_and_decoding_still_matches_generate(monkeypatch, tiny_models):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from summarizer import fast_decode

    monkeypatch.setenv(kernels.KERNELS_ENV, "0")
    assert not kernels.usable_weight(torch.randn(4, 4))
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["base"])
    inputs = tokenizer(["#Person1#: Hello there.\n#Person2#: Hi, how are you?"], return_tensors="pt")
    fast_decode._DECODERS.clear()
    with torch.inference_mode():
        got = fast_decode.generate(model, **inputs, max_new_tokens=8, min_new_tokens=8)
        expected = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8)
    decoder = fast_decode._decoder_for(model)
    assert not decoder.kernel and decoder.layers[0].q.kernel is False
    assert got.tolist() == expected.tolist()
    fast_decode._DECODERS.clear()


def test_no_compiler_means_no_library(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "_library", None)
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernels.library() is None
    assert kernels.linear(torch.randn(1, 8), torch.randn(4, 8)) is None


@pytest.mark.parametrize("overrides", [{}, dict(feed_forward_proj="relu", d_kv=64, num_heads=2, tie_word_embeddings=True)])
def test_whole_step_matches_the_step_op_by_op(overrides):
    """decode.c's decoder_step (one call per token) against the per-op step, through a beam reorder."""
    from transformers import T5ForConditionalGeneration

    from helpers import tiny_t5_config
    from summarizer import fast_decode

    torch.manual_seed(3)
    model = T5ForConditionalGeneration(tiny_t5_config(50, **overrides)).eval()
    decoder = fast_decode._Decoder(model)
    encoded = torch.randn(3, 7, model.config.d_model)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[2, -2:] = 0  # a padded row: the cross-attention bias differs per row
    with torch.inference_mode():
        whole, by_op = decoder.start(encoded, mask, 8), decoder.start(encoded, mask, 8)
        assert whole["whole_step"] is not None
        by_op["whole_step"] = None
        tokens = torch.zeros(3, dtype=torch.long)
        for t in range(6):
            expected = decoder.step(by_op, tokens, t)
            torch.testing.assert_close(decoder.step(whole, tokens, t), expected, rtol=1e-4, atol=1e-4)
            tokens = expected.argmax(-1)
            if t == 2:  # beam search keeps rows 1, 1, 0
                survivors = torch.tensor([1, 1, 0])
                decoder.reorder(whole, survivors)
                decoder.reorder(by_op, survivors)
                tokens = tokens[survivors]


def test_whole_step_for_plain_and_lora_rows_not_for_merged_layers(tiny_models):
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    from summarizer import fast_decode

    peft = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]),
                                     tiny_models["lora"], adapter_name="lora").eval()
    t5 = peft.base_model.model
    decoder = fast_decode._decoder_for(t5)
    encoded = torch.randn(2, 5, t5.config.d_model)
    with torch.inference_mode():
        with peft.disable_adapter():  # the base model's rows, with an adapter loaded beside it
            step = decoder.start(encoded, None, 4)["whole_step"]
            assert step is not None and step.lora is None
        step = decoder.start(encoded, None, 4)["whole_step"]  # the adapter on every row: in C too
        assert step is not None and step.lora is not None and list(step.lora_arrays[1]) == [0, 0]
        step = decoder.start(encoded, None, 4, adapter_names=["__base__", "lora"])["whole_step"]
        assert step is not None and list(step.lora_arrays[1]) == [-1, 0]
        peft.merge_adapter()  # merged: PEFT would unmerge first; the per-op path handles it
        try:
            assert decoder.start(encoded, None, 4)["whole_step"] is None
        finally:
            peft.unmerge_adapter()


def test_whole_step_with_lora_rows_matches_the_step_op_by_op(tiny_models):
    """Base and LoRA rows in one C call per token against PEFT's layers op by op, through a beam reorder."""
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    from summarizer import fast_decode

    peft = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_models["base"]),
                                     tiny_models["lora"], adapter_name="lora").eval()
    t5 = peft.base_model.model
    decoder = fast_decode._decoder_for(t5)
    names = ["lora", "__base__", "lora", "lora", "__base__"]
    torch.manual_seed(5)
    encoded = torch.randn(5, 6, t5.config.d_model)
    with torch.inference_mode():
        whole, by_op = decoder.start(encoded, None, 8, names), decoder.start(encoded, None, 8, names)
        assert whole["whole_step"].lora is not None
        by_op["whole_step"] = None
        tokens = torch.zeros(5, dtype=torch.long)
        for t in range(6):
            expected = decoder.step(by_op, tokens, t)
            got = decoder.step(whole, tokens, t)
            scale = float(expected.abs().max())
            torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4 * scale)  # float rounding
            tokens = expected.argmax(-1)
            if t == 2:  # beam search keeps rows 0, 0, 2, 3, 3 (the adapters go with them)
                survivors = torch.tensor([0, 0, 2, 3, 3])
                for state in (whole, by_op):
                    decoder.reorder(state, survivors)
                by_op["adapter_names"] = [names[i] for i in survivors.tolist()]
                tokens = tokens[survivors]


# ---- Robustness (issue 26): shapes checked before C, one build across processes, failures retried.

def test_a_kernel_given_a_wrong_shape_raises_one_line():
    cases = [lambda: kernels.linear(torch.randn(2, 8), torch.randn(4, 9)),
             lambda: kernels.rms_norm(torch.randn(3, 8), torch.randn(7), 1e-6),
             lambda: kernels.gelu_gate(torch.randn(2, 8), torch.randn(2, 9)),
             lambda: kernels.attend(torch.randn(2, 1, 32), torch.randn(2, 2, 5, 16), torch.randn(2, 2, 5, 16),
                                    torch.randn(1, 2, 1, 4))]
    for call in cases:
        with pytest.raises(kernels.KernelArgumentError) as caught:
            call()
        assert "\n" not in str(caught.value) and str(caught.value).startswith("CPU kernel:")


def _step_weights(d_model=16, heads=2, d_kv=8, d_ff=24, vocab=30, layers=1):
    inner = heads * d_kv
    shapes = [(d_model,), (inner, d_model), (inner, d_model), (inner, d_model), (d_model, inner), (d_model,),
              (inner, d_model), (d_model, inner), (d_model,), (d_ff, d_model), (d_ff, d_model), (d_model, d_ff)]
    return [[torch.randn(s) for s in shapes] for _ in range(layers)], torch.randn(d_model), torch.randn(vocab, d_model)


def test_the_whole_step_checks_every_tensor_before_c():
    layers, final_norm, lm_head = _step_weights()
    args = dict(eps=1e-6, scale=None, rows=2, heads=2, d_kv=8, steps=4, source=5, gated=True)
    step = kernels.DecoderStep(layers, final_norm, lm_head, **args)
    cache = [torch.zeros(2, 2, 2, 4, 8)]
    cross = [(torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8))]
    step.bind(cache, cross, torch.zeros(1, 2, 1, 5))
    logits = step(torch.randn(2, 16), torch.zeros(1, 2, 1, 1), 0)
    assert logits.shape == (2, 30) and bool(torch.isfinite(logits).all())
    bad = [layer[:] for layer in layers]
    bad[0][4] = torch.randn(16, 15)  # o projection one column short
    wrong = [lambda: kernels.DecoderStep(bad, final_norm, lm_head, **args),
             lambda: step.bind([torch.zeros(2, 3, 2, 4, 8)], cross, torch.zeros(1, 2, 1, 5)),  # 3 rows
             lambda: step(torch.randn(3, 16), torch.zeros(1, 2, 1, 1), 0),  # more rows than the caches
             lambda: step(torch.randn(2, 16), torch.zeros(1, 2, 1, 1), 4),  # past the last step
             lambda: step(torch.randn(1, 16), torch.zeros(1, 2, 1, 1), 0, torch.tensor([2])),  # no row 2
             lambda: step(torch.randn(2, 16).t(), torch.zeros(1, 2, 1, 1), 0)]  # not contiguous
    for call in wrong:
        with pytest.raises(kernels.KernelArgumentError):
            call()


_COUNTING_CC = """#!/bin/sh
echo built >> "$COUNT_FILE"
sleep 1
exec {cc} "$@"
"""


def test_two_processes_building_at_once_build_once(tmp_path):
    """Two processes with an empty cache (torchrun ranks starting together): one compiles, the
    other waits on the lock and loads that build."""
    import os
    import subprocess
    import sys

    real = kernels._compiler()
    wrapper = tmp_path / "cc"
    wrapper.write_text(_COUNTING_CC.format(cc=real))
    wrapper.chmod(0o755)
    count = tmp_path / "count"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "CC": str(wrapper), "COUNT_FILE": str(count)}
    code = "from summarizer import kernels; print(kernels._build(kernels._compiler()))"
    root = str(kernels._SOURCE.parent.parent.parent)
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    paths = {run.communicate(timeout=300)[0].strip() for run in runs}
    assert [run.returncode for run in runs] == [0, 0]
    assert len(paths) == 1 and os.path.isfile(paths.pop())
    assert count.read_text().split() == ["built"]


def test_an_unwritable_cache_folder_builds_in_a_private_temporary_folder(tmp_path, monkeypatch):
    import os
    import tempfile

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the cache folder cannot be created under a file
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    built = kernels._build(kernels._compiler())
    assert built.parent == tmp_path / "tmp" / f"dialogsum-studio-kernels-{os.getuid()}" and built.is_file()
    assert built.parent.stat().st_mode & 0o077 == 0


def test_a_failed_build_is_tried_again_later(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "_library", None)
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_failed_at", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real = kernels._compiler
    monkeypatch.setattr(kernels, "_compiler", lambda: "/nonexistent/cc")
    assert kernels.library() is None  # failed: not tried again at once
    monkeypatch.setattr(kernels, "_compiler", real)
    assert kernels.library() is None
    assert not list(tmp_path.rglob("*.so"))  # nothing remembered on disk either
    monkeypatch.setattr(kernels, "RETRY_SECONDS", 0.0)
    assert kernels.library() is not None
