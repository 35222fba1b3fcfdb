"""Greedy and beam decoding for T5 written directly over the Hugging Face modules.

`model.generate` pays, at every step and for every layer, for machinery batch-1 decoding never
needs: cache objects that grow by concatenation, attention masks rebuilt from scratch, model
outputs wrapped in dataclasses, `prepare_inputs_for_generation`. At batch 1 each step reads all
the decoder weights (~0.5 GB for flan-t5-base) and does almost no arithmetic per byte, so that
overhead is most of the time. This loop keeps only the arithmetic:

- the encoder runs once (the model's own encoder: same ops, same adapters);
- cross-attention keys/values are computed once per layer from the encoder output;
- self-attention keys/values go into a buffer preallocated for the whole output (no concatenation);
- the relative position bias for every step is looked up once, before the loop;
- each layer calls `F.linear` on the weights directly; LoRA-wrapped layers are called as PEFT
  modules (with `adapter_names` for a mixed batch), so their arithmetic is PEFT's own.

At batch sizes above 1 (evaluate, the Batch tab, training's ROUGE checks: batches of 16) three
more things matter, and the loop does them (benchmarks/README.md, "Batch throughput"):

- the encoder runs on the real tokens only, packed row after row (`_Encoder`): padding is
  neither projected nor attended, and the position bias is sliced once for every layer;
- decode.c's whole step takes up to 64 rows, 4 rows x 4 output features per pass (arithmetic-
  bound, not load-bound), LoRA rows beside base rows included (one adapter a row);
- greedy rows that have produced EOS are no longer computed (generate decodes them to the end
  and throws the tokens away): the C step skips them by index; the per-op step drops them from
  its caches once a quarter have finished.

Every op is the one `generate` runs (same attention function, same RMS norm, same activation), so
greedy fp32 outputs are the same tokens to float rounding (tests/test_fast_decode.py;
benchmarks/check_fast_decode.py, benchmarks/bench_batch.py).
Settings `generate` would honour but this loop does not implement (sampling, repetition penalty,
bad words, ...) raise `Unsupported`, and the caller falls back to `generate`.
"""

from __future__ import annotations

import copy
import math
import weakref

from . import kernels
from . import settings as environment
from .errors import UserError

# "auto" (the default): this loop for models on the CPU, Hugging Face's generate elsewhere (on a
# GPU generate's kernels are already fast, and the loop has not been measured there);
# "fast" forces the loop; "generate" forces generate.
DECODER_ENV = "SUMMARIZER_DECODER"

# Generation settings whose processors this loop implements, with the values that mean "off".
_OFF = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0),
    "encoder_no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,), "sequence_bias": (None,),
    "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,), "exponential_decay_length_penalty": (None,),
    "guidance_scale": (None, 1.0), "watermarking_config": (None,), "renormalize_logits": (None, False),
    "remove_invalid_values": (None, False), "max_time": (None,), "stop_strings": (None,),
    "num_beam_groups": (None, 1), "diversity_penalty": (None, 0.0), "constraints": (None,),
    "force_words_ids": (None,), "num_return_sequences": (None, 1), "do_sample": (None, False),
    "output_scores": (None, False), "output_logits": (None, False), "return_dict_in_generate": (None, False),
    "low_memory": (None, False), "prompt_lookup_num_tokens": (None,), "assistant_model": (None,),
    "penalty_alpha": (None,), "dola_layers": (None,), "cache_implementation": (None,),
}


class Unsupported(Exception):
    """This call needs something only `generate` does: use `generate`."""


def engine_setting() -> str:
    aliases = {**dict.fromkeys(("1", "on", "true", "yes"), "fast"), **dict.fromkeys(("0", "off", "false", "no"), "generate")}
    try:
        return environment.choice(DECODER_ENV, aliases=aliases)
    except UserError:
        return "auto"


def applies(model) -> bool:
    """Whether `summarizer.generation` should try this loop for `model` under the current setting."""
    setting = engine_setting()
    if setting != "auto":
        return setting == "fast"
    try:
        return next(model.parameters()).device.type == "cpu"
    except (StopIteration, AttributeError):
        return False


def settings(model, **kwargs) -> dict:
    """The effective settings `generate` would use: the model's generation_config, then `kwargs`."""
    config = copy.deepcopy(model.generation_config)
    try:
        unused = config.update(**kwargs)
    except ValueError as err:  # settings generate itself rejects: let generate say so
        raise Unsupported(str(err)) from err
    if unused:
        raise Unsupported(f"unknown generate arguments {sorted(unused)}")
    for name, off in _OFF.items():
        value = getattr(config, name, None)
        if value not in off:
            raise Unsupported(f"{name}={value!r}")
    start = config.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    eos = config.eos_token_id
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else None)
    if start is None or pad is None:
        raise Unsupported("no decoder start or pad token")
    if config.max_new_tokens is not None:
        max_length = 1 + config.max_new_tokens  # the decoder prompt is the start token
    else:
        max_length = config.max_length if config.max_length is not None else 20
    return dict(start=int(start), eos=eos, pad=int(pad), max_length=int(max_length),
                min_length=int(config.min_length or 0), min_new_tokens=int(config.min_new_tokens or 0),
                no_repeat_ngram_size=int(config.no_repeat_ngram_size or 0),
                num_beams=int(config.num_beams or 1),
                length_penalty=1.0 if config.length_penalty is None else float(config.length_penalty),
                early_stopping=False if config.early_stopping is None else config.early_stopping)


def _t5(model):
    """(the T5ForConditionalGeneration, its PeftModel or None) of a plain or PEFT-wrapped model."""
    peft = None
    try:
        from peft import PeftModel
    except ImportError:
        PeftModel = ()
    # isinstance, not hasattr: PEFT also puts `peft_config` on the T5 it wraps
    if PeftModel and isinstance(model, PeftModel):
        peft, model = model, model.base_model.model
    if getattr(model.config, "model_type", None) not in ("t5", "mt5") or not model.config.is_encoder_decoder:
        raise Unsupported("not a T5 model")
    if "quantized" in type(model.lm_head).__module__:  # SUMMARIZER_QUANTIZE=int8: generate's path
        raise Unsupported("int8 (quantize_dynamic) model")
    return model, peft


def _bind_feed_forward(layer, dense) -> None:
    """A T5 block's feed-forward projections on `layer`: gated (wi_0, wi_1) or not (wi), then wo."""
    import torch
    layer.gated = hasattr(dense, "wi_0")
    if layer.gated:
        layer.wi_0, layer.wi_1 = _Linear(dense.wi_0), _Linear(dense.wi_1)
    else:
        layer.wi = _Linear(dense.wi)
    layer.wo, layer.act = _Linear(dense.wo), dense.act
    weight = getattr(dense.wo, "weight", None)  # a method, not a tensor, on an int8 layer
    layer.wo_dtype = weight.dtype if isinstance(weight, torch.Tensor) else None


def _feed_forward(layer, x, names, gelu_gate: bool):
    """A block's feed-forward on its normed input `x`: what the block adds to the residual."""
    import torch
    if layer.gated:
        x, up = layer.wi_0(x, names), layer.wi_1(x, names)
        if not (gelu_gate and kernels.gelu_gate(x, up)):
            x = layer.act(x) * up
    else:
        x = layer.act(layer.wi(x, names))
    if layer.wo_dtype is not None and x.dtype != layer.wo_dtype and layer.wo_dtype != torch.int8:
        x = x.to(layer.wo_dtype)
    return layer.wo(x, names)


class _Linear:
    """One projection: `F.linear` on a plain weight, else the module itself (LoRA, int8)."""

    __slots__ = ("weight", "module", "kernel")

    def __init__(self, module):
        import torch
        plain = type(module) is torch.nn.Linear and module.bias is None
        self.weight = module.weight if plain else None
        self.module = module
        self.kernel = plain and kernels.usable_weight(module.weight)

    def __call__(self, x, adapter_names=None):
        if self.weight is not None:
            if self.kernel:
                y = kernels.linear(x, self.weight)
                if y is not None:
                    return y
            from torch.nn.functional import linear
            return linear(x, self.weight)
        if adapter_names is not None and hasattr(self.module, "lora_A"):
            return self.module(x, adapter_names=adapter_names)
        return self.module(x)


class _Layer:
    """The pieces of one T5 decoder block that a decode step uses."""

    def __init__(self, block):
        self_attention, cross, ff = block.layer[0], block.layer[1], block.layer[2]
        attention = self_attention.SelfAttention
        self.attention_module = attention
        self.cross_module = cross.EncDecAttention
        self.norm1, self.norm2, self.norm3 = self_attention.layer_norm, cross.layer_norm, ff.layer_norm
        self.q, self.k, self.v, self.o = (_Linear(getattr(attention, n)) for n in "qkvo")
        self.cross_q, self.cross_o = _Linear(cross.EncDecAttention.q), _Linear(cross.EncDecAttention.o)
        self.cross_k, self.cross_v = _Linear(cross.EncDecAttention.k), _Linear(cross.EncDecAttention.v)
        _bind_feed_forward(self, ff.DenseReluDense)


_ACTIVE = "\0active"  # rows without adapter_names: whichever adapter each LoRA layer has active


def _plain_weight(module):
    """The weight `module` applies right now as a bare projection (fp32 or bf16), or None.

    A LoRA layer counts when none of its adapters is active (the base model's rows once an
    adapter is loaded beside it); a merged one does not (PEFT would unmerge it first).
    """
    found = _projection(module, [_ACTIVE])
    return found[0] if found is not None and not found[1] else None


def _projection(module, row_names):
    """(base weight, {row name: (lora_A weight, lora_B weight, scaling)}) of a projection as decode.c
    reads it for rows that use these adapter names, or None where it cannot (a bias, a merged or
    DoRA layer, several adapters active at once, weights it cannot read in place)."""
    import torch
    if type(module) is torch.nn.Linear:
        usable = module.bias is None and kernels.usable_weight(module.weight, bf16=True)
        return (module.weight, {}) if usable else None
    base = getattr(module, "base_layer", None)
    if base is None or getattr(module, "merged", True) or not hasattr(module, "lora_A"):
        return None
    found = _projection(base, row_names)
    if found is None or found[1]:
        return None
    loras = {}
    for name in set(row_names):
        if name == _ACTIVE:
            active = [] if module.disable_adapters else [a for a in module.active_adapters if a in module.lora_A]
            if len(active) > 1:
                return None
            adapter = active[0] if active else None
        else:
            adapter = name if name in module.lora_A else None
        if adapter is not None:
            parts = _lora_weights(module, adapter)
            if parts is None:
                return None
            loras[name] = parts
    return found[0], loras


def _lora_weights(module, adapter):
    """(A, B, scaling) of plain LoRA `adapter` on `module` (what PEFT adds: B(A x) * scaling), or None."""
    import torch
    if adapter in getattr(module, "lora_variant", {}) or getattr(module, "lora_bias", {}).get(adapter, False):
        return None
    a, b = module.lora_A[adapter], module.lora_B[adapter]
    if type(a) is not torch.nn.Linear or type(b) is not torch.nn.Linear or a.bias is not None or b.bias is not None:
        return None
    if not all(w.dtype == torch.float32 and w.device.type == "cpu" and w.is_contiguous() for w in (a.weight, b.weight)):
        return None
    dropout = module.lora_dropout[adapter]
    if dropout.training and not isinstance(dropout, torch.nn.Identity):
        return None
    return a.weight, b.weight, float(module.scaling[adapter])


def _plain_norm(norm):
    """A norm's weight in fp32 (a copy of a bf16 one: the whole step keeps activations in fp32)."""
    import torch
    weight = getattr(norm, "weight", None)
    if not (isinstance(weight, torch.Tensor) and weight.device.type == "cpu" and weight.dim() == 1):
        return None
    return weight.detach().float().contiguous()  # no copy when it is already fp32 and contiguous


def _rms_norm(norm, x, kernel: bool = False):
    """T5LayerNorm.forward, inlined (its own arithmetic, without the module call)."""
    import torch
    if kernel:
        y = kernels.rms_norm(x, norm.weight, norm.variance_epsilon)
        if y is not None:
            return y
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + norm.variance_epsilon)
    if norm.weight.dtype in (torch.float16, torch.bfloat16):
        x = x.to(norm.weight.dtype)
    return norm.weight * x


class _EncoderLayer:
    """The pieces of one T5 encoder block."""

    def __init__(self, block):
        attention, ff = block.layer[0], block.layer[1]
        self.norm1, self.norm2 = attention.layer_norm, ff.layer_norm
        self.q, self.k, self.v, self.o = (_Linear(getattr(attention.SelfAttention, n)) for n in "qkvo")
        _bind_feed_forward(self, ff.DenseReluDense)


class _Encoder:
    """The T5 encoder over the real tokens of a batch only, packed one row after another.

    At batch 16 the encoder is most of the work, and `generate` runs it on the padded batch: every
    projection and feed-forward also computes the padding (a third of the tokens of a
    length-sorted batch of DialogSum prompts), and every layer rebuilds a batch x heads x L x L
    float mask from the position bias. Here the per-token work (norms, projections, feed-forward)
    runs on the packed real tokens; attention runs row by row over that row's own tokens, with the
    position bias (which depends only on the distance between positions) sliced once for all
    layers, so no padding is ever attended or computed. The ops are the encoder's own (its linear
    layers, LoRA included; sdpa with the bias as additive mask; the same RMS norm and activation),
    so results agree with the padded encoder to float rounding.
    """

    def __init__(self, t5):
        import torch
        stack = t5.encoder
        self.embed = stack.embed_tokens
        self.layers = [_EncoderLayer(block) for block in stack.block]
        self.bias_module = stack.block[0].layer[0].SelfAttention
        self.final_norm = stack.final_layer_norm
        self.heads, self.d_kv = t5.config.num_heads, t5.config.d_kv
        compiled = t5.device.type == "cpu" and kernels.enabled() and kernels.library() is not None
        head = getattr(t5.lm_head, "weight", None)
        self.kernel = compiled and isinstance(head, torch.Tensor) and head.dtype == torch.float32
        self.gelu_gate = self.kernel and all(
            layer.gated and type(layer.act).__name__ == "NewGELUActivation" for layer in self.layers)
        self.usable = all(type(n.weight) is torch.nn.Parameter and n.weight.dtype == torch.float32
                          for layer in self.layers for n in (layer.norm1, layer.norm2))

    def __call__(self, input_ids, inputs_embeds, mask, adapter_names):
        """(rows x length x d_model, zeros at padding) as the T5 encoder gives it, or None where this
        batch is not a prefix-padded fp32 one (the caller runs the model's encoder then)."""
        import torch
        lengths = mask.sum(dim=1)
        positions = torch.arange(mask.shape[1], device=mask.device)
        prefix = bool((mask.bool() == (positions[None, :] < lengths[:, None])).all())
        if not self.usable or not prefix or int(lengths.min()) == 0:
            return None
        keep = mask.bool()
        embeds = self.embed(input_ids[keep]) if inputs_embeds is None else inputs_embeds[keep]
        if embeds.dtype != torch.float32:
            return None
        lengths = lengths.tolist()
        names = None
        if adapter_names is not None:
            names = [name for name, n in zip(adapter_names, lengths) for _ in range(n)]
        longest = max(lengths)
        bias = self.bias_module.compute_bias(longest, longest, device=embeds.device)[0]  # heads x L x L
        biases = {n: bias[:, :n, :n] for n in set(lengths)}  # views: sdpa reads them in place
        hidden = embeds.contiguous()
        for layer in self.layers:
            self._attention_block(layer, hidden, lengths, biases, names)
            hidden.add_(_feed_forward(layer, _rms_norm(layer.norm2, hidden, self.kernel), names,
                                      self.gelu_gate))
        hidden = _rms_norm(self.final_norm, hidden, self.kernel)
        out = hidden.new_zeros((mask.shape[0], mask.shape[1], hidden.shape[-1]))
        out[keep] = hidden
        return out

    def _attention_block(self, layer, hidden, lengths, biases, names):
        import torch
        from torch.nn.functional import scaled_dot_product_attention as sdpa
        x = _rms_norm(layer.norm1, hidden, self.kernel)
        q, k, v = layer.q(x, names), layer.k(x, names), layer.v(x, names)
        out = torch.empty_like(q)
        start = 0
        for n in lengths:  # each row over its own tokens: no padding attended
            shape = (n, self.heads, self.d_kv)
            rows = slice(start, start + n)
            att = sdpa(q[rows].view(shape).transpose(0, 1), k[rows].view(shape).transpose(0, 1),
                       v[rows].view(shape).transpose(0, 1), attn_mask=biases[n], scale=1.0)
            out[rows] = att.transpose(0, 1).reshape(n, -1)
            start += n
        hidden.add_(layer.o(out, names))


def _lora_table(loras: dict, row_names: list):
    """kernels.DecoderStep's LoRA argument: (adapter index per row, adapter count, {(layer, slot):
    {adapter index: (A, B, scaling)}}), or None when no row has an adapter."""
    names = sorted({name for by_name in loras.values() for name in by_name})
    if not names:
        return None
    entries = {key: {names.index(name): parts for name, parts in by_name.items()} for key, by_name in loras.items()}
    return [names.index(n) if n in names else -1 for n in row_names], len(names), entries


class _Decoder:
    """The decoder of one T5, run one token at a time over a preallocated cache."""

    def __init__(self, t5):
        import torch
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.t5.modeling_t5 import eager_attention_forward

        config = t5.config
        self.t5 = weakref.ref(t5)  # the cache of views must not keep a model's weights alive
        self.encoder = _Encoder(t5)
        self.heads, self.d_kv = config.num_heads, config.d_kv
        self.layers = [_Layer(block) for block in t5.decoder.block]
        self.bias_module = t5.decoder.block[0].layer[0].SelfAttention
        self.embed = t5.decoder.embed_tokens
        self.final_norm = t5.decoder.final_layer_norm
        self.lm_head = _Linear(t5.lm_head)
        scale = getattr(config, "scale_decoder_outputs", None)
        self.scale = (config.d_model ** -0.5) if (config.tie_word_embeddings if scale is None else scale) else None
        self.attend = ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation, eager_attention_forward)
        self.dtype = t5.lm_head.weight.dtype if hasattr(t5.lm_head, "weight") else torch.float32
        # The compiled CPU kernels (summarizer/kernels) for attention, norms and the activation;
        # projections decide for themselves (a LoRA-wrapped one stays PEFT's).
        compiled = t5.device.type == "cpu" and kernels.enabled() and kernels.library() is not None
        self.compiled = compiled
        gated_gelu = all(layer.gated and type(layer.act).__name__ == "NewGELUActivation" for layer in self.layers)
        relu = all(not layer.gated and type(layer.act) is torch.nn.ReLU for layer in self.layers)
        self.kernel = self.dtype == torch.float32 and compiled
        self.gelu_gate = self.kernel and gated_gelu
        # decode.c's decoder_step: fp32 or bf16 weights (SUMMARIZER_QUANTIZE=bf16), gelu_new gated or ReLU
        self.whole = compiled and (gated_gelu or relu)

    def _whole_step_weights(self, adapter_names, rows: int):
        """(per layer weights, final norm, lm_head, LoRA) for decode.c's decoder_step, if this call can
        run as one C call per token: plain layers, and LoRA rows beside base rows (one adapter a row)."""
        import torch
        final_norm = _plain_norm(self.final_norm)
        if not self.whole or final_norm is None:
            return None
        lm_head = _plain_weight(self.lm_head.module)
        if lm_head is None or type(self.embed) is not torch.nn.Embedding:
            return None
        row_names = list(adapter_names) if adapter_names is not None else [_ACTIVE] * rows
        weights, loras = [], {}
        for index, layer in enumerate(self.layers):
            ff = dict(wi_0=layer.wi_0, wi_1=layer.wi_1) if layer.gated else dict(wi_0=layer.wi)
            slots = dict(q=layer.q, k=layer.k, v=layer.v, o=layer.o, cross_q=layer.cross_q, cross_o=layer.cross_o,
                         wo=layer.wo, **ff)
            found = {name: _projection(p.module, row_names) for name, p in slots.items()}
            if any(f is None or f[0].dtype != lm_head.dtype for f in found.values()):
                return None
            norms = [_plain_norm(n) for n in (layer.norm1, layer.norm2, layer.norm3)]
            if any(n is None for n in norms):
                return None
            loras.update({(index, name): f[1] for name, f in found.items() if f[1]})
            weights.append([norms[0], *(found[n][0] for n in "qkvo"), norms[1], found["cross_q"][0],
                            found["cross_o"][0], norms[2], found["wi_0"][0],
                            found["wi_1"][0] if layer.gated else None, found["wo"][0]])
        if loras and lm_head.dtype != torch.float32:
            # bf16: PEFT rounds a mixed batch's LoRA rows differently from a one-adapter batch (in the
            # encoder, the cross-attention keys); the per-op step keeps LoRA rows as PEFT computes them
            return None
        return weights, final_norm, lm_head, _lora_table(loras, row_names)

    def start(self, encoder_out, encoder_mask, max_length: int, adapter_names=None):
        """A fresh cache for `encoder_out` rows: cross-attention K/V once, self-attention buffers empty."""
        import torch
        rows, source = encoder_out.shape[:2]
        found = self._whole_step_weights(adapter_names, rows) if rows <= kernels.MAX_STEP_ROWS else None
        shape = (rows, source, self.heads, self.d_kv)
        cross = [(k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2))
                 for k, v in self._cross_keys(encoder_out, encoder_mask, adapter_names)]
        # the whole step keeps activations and caches in fp32, whatever the weights are in
        dtype = torch.float32 if found is not None else encoder_out.dtype
        if self.kernel or found is not None:  # the attention kernel reads each head's keys as one block
            cross = [(k.to(dtype).contiguous(), v.to(dtype).contiguous()) for k, v in cross]
        if encoder_mask is None or bool(encoder_mask.all()):
            cross_bias = torch.zeros((1, self.heads, 1, source), dtype=dtype, device=encoder_out.device)
        else:  # as generate's sdpa path builds it: 0 where attended, the dtype's minimum elsewhere
            keep = encoder_mask.bool()[:, None, None, :].expand(rows, self.heads, 1, source)
            cross_bias = torch.where(keep, torch.zeros((), dtype=dtype), torch.finfo(dtype).min).contiguous()
        steps = max_length  # at most max_length - 1 tokens are fed
        bias = self.bias_module.compute_bias(steps, steps, device=encoder_out.device).to(dtype)
        self_bias = [bias[:, :, t:t + 1, :t + 1].contiguous() for t in range(steps)]
        cache = [torch.empty((2, rows, self.heads, steps, self.d_kv), dtype=dtype, device=encoder_out.device)
                 for _ in self.layers]
        state = {"cross": cross, "cross_bias": cross_bias, "self_bias": self_bias, "cache": cache,
                 "adapter_names": adapter_names, "whole_step": None, "rows": rows, "held": None}
        if found is not None:
            weights, final_norm, lm_head, lora = found
            state["whole_step"] = kernels.DecoderStep(
                weights, final_norm, lm_head, self.final_norm.variance_epsilon, self.scale,
                rows, self.heads, self.d_kv, steps, source, self.layers[0].gated, lora)
            state["whole_step"].bind(cache, cross, cross_bias)
        return state

    def _cross_keys(self, encoder_out, encoder_mask, adapter_names):
        """Cross-attention keys and values of every layer (rows x source x heads * d_kv), projected
        from the real tokens only where the batch is padded (zeros at padding, which the mask hides)."""
        if encoder_mask is None or bool(encoder_mask.all()):
            return [(layer.cross_k(encoder_out, adapter_names), layer.cross_v(encoder_out, adapter_names))
                    for layer in self.layers]
        keep = encoder_mask.bool()
        tokens = encoder_out[keep]
        names = None
        if adapter_names is not None:
            names = [adapter_names[row] for row in keep.nonzero()[:, 0].tolist()]
        out = []
        for layer in self.layers:
            pair = []
            for projection in (layer.cross_k, layer.cross_v):
                packed = projection(tokens, names)
                full = packed.new_zeros((*encoder_out.shape[:2], packed.shape[-1]))
                full[keep] = packed
                pair.append(full)
            out.append(tuple(pair))
        return out

    def _attention(self, module, q, keys, values, bias, head_shape):
        """One query per row against the cached keys/values: rows x 1 x (heads * d_kv)."""
        if self.kernel:
            out = kernels.attend(q, keys, values, bias)
            if out is not None:
                return out
        q = q.view(head_shape).transpose(1, 2)
        out, _ = self.attend(module, q, keys, values, None, dropout=0.0, scaling=1.0, position_bias=bias)
        return out.reshape(head_shape[0], 1, -1).contiguous()

    def reorder(self, state, rows):
        """Beam search: keep the caches of the beams that survive (generate's reorder_cache)."""
        state["cache"] = [c.index_select(1, rows) for c in state["cache"]]
        state["cross"] = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in state["cross"]]
        if state["whole_step"] is not None:
            state["whole_step"].bind(state["cache"], state["cross"], state["cross_bias"])
            state["whole_step"].reorder(rows)

    def _hold(self, state, active):
        """Per-op path: the positions of the `active` rows among the rows the state holds, after
        dropping finished rows from the state once a quarter of them have finished (each drop copies
        the caches, so not at every row that ends)."""
        import torch
        held = state["held"]
        if held is None:
            held = state["held"] = torch.arange(state["rows"], device=active.device)
        if len(active) <= 0.75 * len(held):
            keep = torch.searchsorted(held, active)
            state["cache"] = [c.index_select(1, keep) for c in state["cache"]]
            state["cross"] = [(k.index_select(0, keep), v.index_select(0, keep)) for k, v in state["cross"]]
            if state["cross_bias"].shape[0] > 1:
                state["cross_bias"] = state["cross_bias"].index_select(0, keep)
            if state["adapter_names"] is not None:
                state["adapter_names"] = [state["adapter_names"][i] for i in keep.tolist()]
            held = state["held"] = active.clone()
        return None if len(held) == len(active) else torch.searchsorted(held, active)

    def step(self, state, tokens, t: int, active=None):
        """Logits (float32, rows x vocab) for `tokens` (rows,) at decoder position `t`.

        `active` (greedy search): the rows still decoding, ascending, one token each in `tokens`;
        logits come back for those rows only, and finished rows are no longer computed.
        """
        import torch
        if state["whole_step"] is not None:  # every layer plain (fp32 or bf16 weights): one C call (decode.c)
            hidden = self.embed(tokens).to(torch.float32).contiguous()
            index = None if active is None or len(active) == state["rows"] else active
            return state["whole_step"](hidden, state["self_bias"][t], t, index)
        positions = None if active is None else self._hold(state, active)
        if positions is not None:  # rows held but finished: fed a token, their logits dropped
            fed = torch.zeros(len(state["held"]), dtype=tokens.dtype, device=tokens.device)
            fed[positions] = tokens
            return self._step_by_op(state, fed, t)[positions]
        return self._step_by_op(state, tokens, t)

    def _step_by_op(self, state, tokens, t: int):
        import torch
        names = state["adapter_names"]
        rows = tokens.shape[0]
        hidden = self.embed(tokens[:, None])
        head_shape = (rows, 1, self.heads, self.d_kv)
        self_bias, cross_bias = state["self_bias"][t], state["cross_bias"]
        kernel = self.kernel
        for layer, cache, (cross_k, cross_v) in zip(self.layers, state["cache"], state["cross"]):
            x = _rms_norm(layer.norm1, hidden, kernel)
            q = layer.q(x, names)
            cache[0, :, :, t:t + 1] = layer.k(x, names).view(head_shape).transpose(1, 2)
            cache[1, :, :, t:t + 1] = layer.v(x, names).view(head_shape).transpose(1, 2)
            out = self._attention(layer.attention_module, q, cache[0, :, :, :t + 1], cache[1, :, :, :t + 1],
                                  self_bias, head_shape)
            hidden.add_(layer.o(out, names))
            x = _rms_norm(layer.norm2, hidden, kernel)
            out = self._attention(layer.cross_module, layer.cross_q(x, names), cross_k, cross_v, cross_bias,
                                  head_shape)
            hidden.add_(layer.cross_o(out, names))
            hidden.add_(_feed_forward(layer, _rms_norm(layer.norm3, hidden, kernel), names, self.gelu_gate))
        hidden = _rms_norm(self.final_norm, hidden, kernel)
        if self.scale is not None:
            hidden = hidden * self.scale
        return self.lm_head(hidden, names)[:, -1].to(copy=True, dtype=torch.float32)


# T5 model -> its decoder view (weights shared, not copied). Weak: a model that is unloaded goes,
# with its view and everything the view points at.
_DECODERS: "weakref.WeakKeyDictionary[object, _Decoder]" = weakref.WeakKeyDictionary()


def _decoder_for(t5) -> _Decoder:
    decoder = _DECODERS.get(t5)
    if decoder is None or _stale(decoder, t5):
        decoder = _DECODERS[t5] = _Decoder(t5)
    return decoder


def _stale(decoder: _Decoder, t5) -> bool:
    """Adapters added or removed since (the wrapped modules changed under the view), or the kernels
    became available after a failed build was retried."""
    block = t5.decoder.block[0].layer[0].SelfAttention
    if decoder.layers[0].q.module is not block.q:
        return True
    return decoder.compiled is False and t5.device.type == "cpu" and kernels.enabled() and kernels.library() is not None


def generate(model, input_ids=None, attention_mask=None, inputs_embeds=None, adapter_names=None,
             streamer=None, **kwargs):
    """What `model.generate(...)` returns (token ids, decoder start first), for greedy and beam search.

    `model` is a T5ForConditionalGeneration or a PeftModel around one; the caller has already set
    the active adapter (or passes `adapter_names`, one per row, for a mixed batch). Raises
    `Unsupported` before doing any work when `generate` would do something this loop does not.
    """
    import torch

    t5, peft = _t5(model)
    config = settings(t5, **kwargs)
    if adapter_names is not None and peft is None:
        raise Unsupported("adapter_names without a PEFT model")
    if config["num_beams"] > 1 and streamer is not None:
        raise Unsupported("streaming beam search")
    if getattr(t5.config, "_attn_implementation", "eager") not in ("sdpa", "eager"):
        raise Unsupported(f"attention implementation {t5.config._attn_implementation}")
    decoder = _decoder_for(t5)
    device = t5.device
    if attention_mask is None:
        source = input_ids if input_ids is not None else inputs_embeds[..., 0]
        attention_mask = torch.ones(source.shape[:2], dtype=torch.long, device=device)

    encoder_kwargs = dict(attention_mask=attention_mask, return_dict=True)
    if inputs_embeds is not None:
        encoder_kwargs["inputs_embeds"] = inputs_embeds
    else:
        encoder_kwargs["input_ids"] = input_ids
    encoded = None if t5.training else decoder.encoder(input_ids, inputs_embeds, attention_mask, adapter_names)
    if encoded is not None:
        pass
    elif adapter_names is not None:
        with peft._enable_peft_forward_hooks(adapter_names=adapter_names):
            encoded = t5.get_encoder()(**encoder_kwargs).last_hidden_state
    else:
        encoded = t5.get_encoder()(**encoder_kwargs).last_hidden_state

    if config["num_beams"] > 1:
        return _beam_search(t5, decoder, encoded, attention_mask, adapter_names, config)
    return _greedy(decoder, encoded, attention_mask, adapter_names, config, streamer)


def _greedy(decoder: _Decoder, encoded, mask, adapter_names, config, streamer):
    """generate's greedy search; rows that have produced EOS are no longer computed (generate
    keeps decoding them and replaces their tokens with padding, which is what they get here)."""
    import torch

    rows = encoded.shape[0]
    max_length, pad = config["max_length"], config["pad"]
    eos = torch.tensor(config["eos"], dtype=torch.long) if config["eos"] else None
    blocker = _NgramBlocker(config["no_repeat_ngram_size"], rows)
    tokens = torch.full((rows,), config["start"], dtype=torch.long, device=encoded.device)
    sequences = [tokens]
    blocker.add(tokens.tolist())
    if streamer is not None:
        streamer.put(tokens[:, None].cpu())
    active = torch.arange(rows, device=encoded.device) if eos is not None else None  # still decoding, ascending
    fed = tokens
    state = decoder.start(encoded, mask, max_length, adapter_names)
    length = 1
    while length < max_length:
        scores = decoder.step(state, fed, length - 1, active)
        _block_eos(scores, config, length, eos)
        blocker.block(scores, None if active is None else active.tolist())
        chosen = torch.argmax(scores, dim=-1)
        if active is None:
            tokens = fed = chosen
        else:
            tokens = torch.full((rows,), pad, dtype=torch.long, device=encoded.device)
            tokens[active] = chosen
        sequences.append(tokens)
        length += 1
        blocker.add(tokens.tolist())
        if streamer is not None:
            streamer.put(tokens.cpu())
        if active is not None:
            going = ~torch.isin(chosen, eos.to(chosen.device))
            active, fed = active[going], chosen[going]
            if len(active) == 0:
                break
    if streamer is not None:
        streamer.end()
    return torch.stack(sequences, dim=1)


def _block_eos(scores, config, length: int, eos) -> None:
    """MinLength and MinNewTokens processors: no EOS before the minimum length."""
    if eos is None:
        return
    if length < config["min_length"] or (length - 1) < config["min_new_tokens"]:
        scores[:, eos] = -math.inf


class _NgramBlocker:
    """generate's no_repeat_ngram_size: a token that would repeat an n-gram of the row gets -inf.

    The n-grams include the decoder start token, as generate counts them. Kept incrementally for
    greedy (rows never reorder); beam search rebuilds it from the sequences each step.
    """

    def __init__(self, n: int, rows: int):
        self.n = n
        self.seen: list[dict] = [{} for _ in range(rows)]
        self.history: list[list[int]] = [[] for _ in range(rows)]

    def add(self, tokens: list[int]) -> None:
        if self.n <= 0:
            return
        for row, token in enumerate(tokens):
            history = self.history[row]
            history.append(token)
            if len(history) >= self.n:
                prefix = tuple(history[-self.n:-1])
                self.seen[row].setdefault(prefix, []).append(token)

    def block(self, scores, rows: list[int] | None = None) -> None:
        """-inf for the banned tokens; `rows`: which row each line of `scores` is (default: all, in order)."""
        if self.n <= 0:
            return
        for line, row in enumerate(range(len(self.history)) if rows is None else rows):
            history = self.history[row]
            if len(history) + 1 < self.n:
                continue
            banned = self.seen[row].get(tuple(history[len(history) + 1 - self.n:]), [])
            if banned:
                scores[line, banned] = -math.inf

    @classmethod
    def from_sequences(cls, n: int, sequences: list[list[int]]) -> "_NgramBlocker":
        blocker = cls(n, len(sequences))
        for row, sequence in enumerate(sequences):
            for token in sequence:
                blocker._add_one(row, token)
        return blocker

    def _add_one(self, row: int, token: int) -> None:
        history = self.history[row]
        history.append(token)
        if self.n > 0 and len(history) >= self.n:
            self.seen[row].setdefault(tuple(history[-self.n:-1]), []).append(token)


def _beam_log_probs(decoder: _Decoder, state, tokens, cur_len: int, running_sequences, running_beam_scores,
                    config, eos):
    """Every beam's next-token log-probabilities, blocked as generate blocks them and added to
    the beam's score: (batch, beams x vocabulary)."""
    from torch import nn

    batch, beams = running_beam_scores.shape
    log_probs = nn.functional.log_softmax(decoder.step(state, tokens, cur_len - 1), dim=-1)
    _block_eos(log_probs, config, cur_len, eos)
    if config["no_repeat_ngram_size"] > 0:
        flat = running_sequences[:, :, :cur_len].reshape(batch * beams, cur_len)
        _NgramBlocker.from_sequences(config["no_repeat_ngram_size"], flat.tolist()).block(log_probs)
    return (log_probs.reshape(batch, beams, -1) + running_beam_scores[:, :, None]).reshape(batch, -1)


def _beam_search(t5, decoder: _Decoder, encoded, mask, adapter_names, config):
    """generate's vectorised beam search (transformers 5), step for step, over this decoder.

    The bookkeeping (top-k continuations, finished hypotheses, early stopping) calls generate's
    own static helpers, so ties and length penalties resolve exactly as there.
    """
    import torch

    beams = config["num_beams"]
    batch = encoded.shape[0]
    encoded = encoded.repeat_interleave(beams, dim=0)  # generate's _expand_inputs_for_generation
    mask = mask.repeat_interleave(beams, dim=0)
    if adapter_names is not None:
        adapter_names = [name for name in adapter_names for _ in range(beams)]
    max_length, pad = config["max_length"], config["pad"]
    eos_list = config["eos"]
    eos = torch.tensor(eos_list, dtype=torch.long) if eos_list else None
    early_stopping, length_penalty = config["early_stopping"], config["length_penalty"]
    device = encoded.device
    cur_len = prompt_len = 1
    beams_to_keep = max(2, 1 + len(eos_list)) * beams
    top_num_beam_mask = torch.cat((torch.ones(beams, dtype=torch.bool),
                                   torch.zeros(beams_to_keep - beams, dtype=torch.bool))).to(device)
    fill = pad or (eos_list[0] if eos_list else -1)
    running_sequences = torch.full((batch, beams, max_length), fill, dtype=torch.int64, device=device)
    running_sequences[:, :, :cur_len] = config["start"]
    sequences = running_sequences.detach().clone()
    running_beam_scores = torch.zeros((batch, beams), dtype=torch.float, device=device)
    running_beam_scores[:, 1:] = -1e9
    beam_scores = torch.full((batch, beams), -1e9, dtype=torch.float, device=device)
    is_sent_finished = torch.zeros((batch, beams), dtype=torch.bool, device=device)
    heuristic_unsatisfied = torch.ones((batch, 1), dtype=torch.bool, device=device)
    running_beam_indices = torch.full((batch, beams, max_length - cur_len), -1, dtype=torch.int32, device=device)
    beam_indices = running_beam_indices.detach().clone()
    state = decoder.start(encoded, mask, max_length, adapter_names)
    tokens = running_sequences[:, :, 0].reshape(-1)
    while True:
        log_probs = _beam_log_probs(decoder, state, tokens, cur_len, running_sequences, running_beam_scores,
                                    config, eos)
        topk_log_probs, topk_running_sequences, topk_running_beam_indices = t5._get_top_k_continuations(
            accumulated_log_probs=log_probs, running_sequences=running_sequences,
            running_beam_indices=running_beam_indices, cur_len=cur_len, decoder_prompt_len=prompt_len,
            do_sample=False, beams_to_keep=beams_to_keep, num_beams=beams, batch_size=batch)
        # generate's stopping criteria: the maximum length, or an EOS just chosen
        hits = torch.full((batch, beams_to_keep), cur_len + 1 >= max_length, dtype=torch.bool, device=device)
        if eos is not None:
            hits = hits | torch.isin(topk_running_sequences[:, :, cur_len], eos)
        running_sequences, running_beam_scores, running_beam_indices = t5._get_running_beams_for_next_iteration(
            topk_log_probs=topk_log_probs, topk_running_sequences=topk_running_sequences,
            topk_running_beam_indices=topk_running_beam_indices, next_token_hits_stopping_criteria=hits,
            num_beams=beams)
        sequences, beam_scores, beam_indices, is_sent_finished = t5._update_finished_beams(
            sequences=sequences, topk_running_sequences=topk_running_sequences, beam_scores=beam_scores,
            topk_log_probs=topk_log_probs, beam_indices=beam_indices,
            topk_running_beam_indices=topk_running_beam_indices,
            is_early_stop_heuristic_unsatisfied=heuristic_unsatisfied, is_sent_finished=is_sent_finished,
            next_token_hits_stopping_criteria=hits, top_num_beam_mask=top_num_beam_mask, num_beams=beams,
            cur_len=cur_len, decoder_prompt_len=prompt_len, length_penalty=length_penalty,
            early_stopping=early_stopping)
        survivors = running_beam_indices[..., cur_len - prompt_len].reshape(-1).long()
        cur_len += 1
        heuristic_unsatisfied = t5._check_early_stop_heuristic(
            is_early_stop_heuristic_unsatisfied=heuristic_unsatisfied, running_beam_scores=running_beam_scores,
            beam_scores=beam_scores, is_sent_finished=is_sent_finished, cur_len=cur_len, max_length=max_length,
            decoder_prompt_len=prompt_len, early_stopping=early_stopping, length_penalty=length_penalty)
        if not bool(t5._beam_search_has_unfinished_sequences(heuristic_unsatisfied, is_sent_finished, hits,
                                                             early_stopping)):
            break
        decoder.reorder(state, survivors)
        tokens = running_sequences[:, :, cur_len - 1].reshape(-1)
    sequences = sequences[:, :1, :].reshape(batch, max_length)
    beam_indices = beam_indices[:, :1, :].reshape(batch, -1)
    generated = int(((beam_indices + 1).bool()).sum(dim=1).max())
    return sequences[:, :prompt_len + generated]
