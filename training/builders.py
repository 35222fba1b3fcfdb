"""Building T5 models and tokenizers from nothing: what pre-training, the benchmarks and the tests start from.

The hub is out of reach on CI, so everything that needs a model it cannot download builds one: a
T5 tokenizer trained on text the caller supplies (the miniature experiment's own tokenizer is made
this way), and a T5 with random weights, saved as a real Hugging Face folder. The
architectures' public configs (flan-t5-small/base/large/xl, beside this file) give the same
compute and memory cost as the real checkpoints.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

ARCHITECTURES_DIR = Path(__file__).resolve().parent / "architectures"


def train_t5_tokenizer(texts: Iterable[str], vocab_size: int = 2000, extra_ids: int = 100,
                       whole_pieces: Sequence[str] = (), add_frequent_words: bool = True):
    """A T5Tokenizer (SentencePiece-style unigram) trained on `texts`.

    `whole_pieces` (such as DialogSum's `#Person1#`) become one piece each: they are taken out of
    the training text, so the trainer does not spend pieces on their fragments, and given the
    highest score, so they always win over a split.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    specials = ["<pad>", "</s>", "<unk>"]
    raw = Tokenizer(models.Unigram())
    raw.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - extra_ids - len(whole_pieces), special_tokens=specials,
        unk_token="<unk>", show_progress=False,
    )
    texts = list(texts)
    corpus = texts
    for piece in whole_pieces:
        corpus = [t.replace(piece, " ") for t in corpus]
    raw.train_from_iterator(corpus, trainer=trainer)
    learned = [(p, s) for p, s in json.loads(raw.to_str())["model"]["vocab"] if p not in specials]
    vocab = [(p, 0.0) for p in specials] + [(f"▁{p}", 0.0) for p in whole_pieces] + learned
    if add_frequent_words:
        # On a small corpus the unigram trainer prunes down to characters; whole words seen at
        # least twice, scored by frequency, keep token counts realistic (about one token per word).
        words = Counter(w for t in texts for w in t.split())
        total = sum(words.values()) or 1
        known = {p for p, _ in vocab}
        room = vocab_size - extra_ids - len(vocab)
        frequent = [(f"▁{w}", math.log(c / total)) for w, c in words.most_common()
                    if c > 1 and f"▁{w}" not in known]
        vocab += frequent[: max(0, room)]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra_ids - 1, -1, -1)]
    return T5Tokenizer(vocab=vocab, extra_ids=extra_ids)


def architecture_config(name: str):
    """The public config of flan-t5-small/base/large/xl (shipped in training/architectures/)."""
    from transformers import T5Config

    path = ARCHITECTURES_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ARCHITECTURES_DIR.glob("*.json")))
        raise ValueError(f"unknown architecture {name!r}; known: {known}")
    return T5Config.from_dict(json.loads(path.read_text()))


def build_random_t5(config, seed: int = 0):
    """A T5ForConditionalGeneration with random weights and an untied lm_head, as in FLAN-T5.

    transformers 5 ties lm_head to the input embedding when a model is built from a config in
    memory; FLAN-T5 checkpoints have them untied, so we give lm_head its own weights here.
    """
    import torch
    from transformers import T5ForConditionalGeneration

    config = copy.deepcopy(config)  # the caller's config stays as it was, ready for another model
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)  # encoder/decoder embeddings share `shared`
    if model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr():
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight) * 0.05)
    # Saved as FLAN-T5's config.json says it; loading keeps lm_head untied since values differ.
    model.config.tie_word_embeddings = False
    model.eval()
    return model


def save_random_t5(folder: str | Path, config, tokenizer, seed: int = 0) -> Path:
    """Build a random-weight T5 and save it with its tokenizer as a Hugging Face folder."""
    folder = Path(folder)
    model = build_random_t5(config, seed=seed)
    model.generation_config.decoder_start_token_id = config.decoder_start_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
