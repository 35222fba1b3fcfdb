"""Load a seq2seq checkpoint as what its weights are: a T5 whose output head is its own.

transformers 5 forces `T5Config.tie_word_embeddings` to True whatever config.json says (its
`false` now only means "do not scale the decoder output", as T5 v1.1 / FLAN-T5 do). A checkpoint
that stores its own `lm_head.weight`, different from the shared embedding (FLAN-T5 and every
model trained here), then loads correctly but with a warning at every load ("both are present in
the checkpoints with different values, so we will NOT tie them"), on a Space's log too. Loading it
through a class whose tied keys leave the head out says the truth: same weights, same outputs
(tests/test_mini_models.py), no warning. A checkpoint without its own head is tied as before.
"""

from __future__ import annotations

import json
from pathlib import Path

HEAD = "lm_head.weight"
SHARED = "shared.weight"


def stored_weight_names(location: str | Path) -> set[str] | None:
    """The tensor names a local safetensors checkpoint stores (one file or sharded); None when
    `location` is not a local folder (a hub id: then nothing is assumed)."""
    folder = Path(location)
    if not folder.is_dir():
        return None
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}))
    single = folder / "model.safetensors"
    if not single.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as weights:
        return set(weights.keys())


def has_own_head(location: str | Path) -> bool:
    names = stored_weight_names(location)
    return names is not None and HEAD in names and SHARED in names


def _untied_head_t5():
    from transformers import T5ForConditionalGeneration

    class T5WithOwnHead(T5ForConditionalGeneration):
        """T5 whose encoder and decoder share the embedding and whose output head is separate."""

        _tied_weights_keys = {"encoder.embed_tokens.weight": SHARED, "decoder.embed_tokens.weight": SHARED}

    return T5WithOwnHead


def load_seq2seq(location: str, **kwargs):
    """`AutoModelForSeq2SeqLM.from_pretrained(location, **kwargs)`, with a T5 checkpoint that
    stores its own head loaded as such (no tie, no warning)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    if has_own_head(location):
        config = AutoConfig.from_pretrained(location, revision=kwargs.get("revision"),
                                            trust_remote_code=False)
        if config.model_type == "t5":
            return _untied_head_t5().from_pretrained(location, config=config, **kwargs)
    return AutoModelForSeq2SeqLM.from_pretrained(location, **kwargs)
