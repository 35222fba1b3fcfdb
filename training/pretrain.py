"""Pre-training a small T5 from scratch on dialogues alone: the miniature experiment's "FLAN-T5 as
released", a model that follows instruction templates but has never seen a summary.

Two instruction tasks on the train dialogues (their summaries are never read):
- repair: a window of a dialogue with spans masked (T5 sentinels) in, the whole window out.
  Writing the window back is what teaches the decoder to look at the encoder and copy from it;
  the issue measured that a small model trained on summaries alone stays input-blind for long;
- topic: the whole dialogue in, its topic label (two or three words) out: reading for the gist.

The loop is the same Seq2SeqTrainer, checkpoints and completion markers as `python -m training
full|lora|prompt-tuning`, so a killed pre-training resumes the same way.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from summarizer.data import Example

from . import checkpoints
from .card import plot_losses
from .config import as_dict, option
from .data import collator

SPEAKER_TAGS = tuple(f"#Person{i}#" for i in range(1, 10))  # DialogSum's speakers, one piece each
REPAIR_INSTRUCTION = "Repair the masked parts of the following conversation.\n\n"
REPAIR_ANSWER = "\n\nConversation: "
TOPIC_INSTRUCTION = "What is the topic of the following conversation?\n\n"
TOPIC_ANSWER = "\n\nTopic: "


@dataclass
class PretrainConfig:
    """Shape of the miniature T5 and its pre-training (FLAN-T5's family: gated-GELU feed-forward,
    relative position buckets, untied lm_head)."""
    vocab_size: int = option(8000, "tokenizer pieces, trained on the train split")
    d_model: int = option(256, "hidden size")
    d_kv: int = option(64, "size of each attention head")
    num_heads: int = option(4, "attention heads")
    d_ff: int = option(768, "gated-GELU feed-forward size")
    num_layers: int = option(4, "encoder layers")
    num_decoder_layers: int = option(2, "decoder layers (summaries are short; the encoder reads)")
    relative_attention_num_buckets: int = option(32, "relative position buckets")
    relative_attention_max_distance: int = option(128, "relative positions beyond this share a bucket")
    dropout_rate: float = option(0.1, "dropout written into the saved config, for fine-tuning "
                                      "(pre-training itself runs without dropout, as T5 1.1's did)")
    previous_token_bias: float = option(6.0, "initial relative-position bias of one encoder head "
                                             "towards the previous token (0: plain random init); "
                                             "gives copying a head start")
    window_tokens: int = option(128, "tokens of dialogue per repair example")
    mask_fraction: float = option(0.15, "share of a window's tokens masked for repair")
    mean_span: float = option(3.0, "mean masked span length")
    topic_share: float = option(0.25, "share of pre-training examples that ask for the topic")
    topic_max_tokens: int = option(256, "dialogue tokens kept in a topic example")
    max_steps: int = option(5000, "optimizer steps")
    batch_size: int = option(16, "examples per step")
    learning_rate: float = option(1e-3, "AdamW peak learning rate (small models take large rates)")
    warmup_steps: int = option(300, "linear warm-up steps before the linear decay")
    weight_decay: float = option(0.01, "AdamW weight decay")


def train_tokenizer(dialogues: Sequence[str], summaries: Sequence[str], vocab_size: int):
    """A T5 tokenizer (unigram) trained on the train split, speaker tags as single pieces."""
    from training.builders import train_t5_tokenizer

    return train_t5_tokenizer([*dialogues, *summaries], vocab_size=vocab_size, whole_pieces=SPEAKER_TAGS,
                              add_frequent_words=False)


def build_model(config: PretrainConfig, tokenizer, seed: int):
    """A random-weight T5 of FLAN-T5's family, lm_head untied, one encoder head looking back."""
    import torch
    from transformers import T5Config
    from transformers.models.t5.modeling_t5 import T5Attention

    from training.builders import build_random_t5

    t5_config = T5Config(
        vocab_size=len(tokenizer), d_model=config.d_model, d_kv=config.d_kv,
        num_heads=config.num_heads, d_ff=config.d_ff, num_layers=config.num_layers,
        num_decoder_layers=config.num_decoder_layers, feed_forward_proj="gated-gelu",
        relative_attention_num_buckets=config.relative_attention_num_buckets,
        relative_attention_max_distance=config.relative_attention_max_distance,
        dropout_rate=0.0, tie_word_embeddings=False, decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = build_random_t5(t5_config, seed=seed)
    model.train()
    if config.previous_token_bias:
        # Copying a word needs the encoder state at position i to know word i-1 (so the decoder
        # can find where it is in the dialogue); a head that starts out looking one step back
        # saves the thousands of steps a random head takes to discover that.
        bucket = T5Attention._relative_position_bucket(
            torch.tensor([-1]), bidirectional=True, num_buckets=config.relative_attention_num_buckets,
            max_distance=config.relative_attention_max_distance).item()
        bias = model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias
        with torch.no_grad():
            bias.weight[bucket, 0] = config.previous_token_bias
    return model


def _mask_spans(ids: list[int], rng: random.Random, fraction: float, mean_span: float,
                sentinels: list[int]) -> list[int]:
    """Replace about `fraction` of the ids with spans, each span by the next sentinel."""
    n_masked = max(1, round(len(ids) * fraction))
    n_spans = max(1, min(len(sentinels), round(n_masked / mean_span)))
    starts = sorted(rng.sample(range(len(ids)), min(n_spans, len(ids))))
    out, position, sentinel = [], 0, 0
    for start in starts:
        if start < position:
            continue
        length = max(1, min(len(ids) - start, round(rng.expovariate(1 / mean_span))))
        out += ids[position:start] + [sentinels[sentinel]]
        position, sentinel = start + length, sentinel + 1
    return out + ids[position:]


def pretraining_examples(examples: Sequence[Example], tokenizer, config: PretrainConfig,
                         count: int, seed: int) -> list[dict]:
    """`count` tokenized examples (repair and topic), the same for the same seed: a resumed run
    sees exactly the data order the interrupted one would have."""
    rng = random.Random(seed)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
    dialogues = [encode(e.dialogue) for e in examples]
    topics = [(i, encode(e.topic)) for i, e in enumerate(examples) if e.topic]
    repair_head, repair_tail = encode(REPAIR_INSTRUCTION), encode(REPAIR_ANSWER)
    topic_head, topic_tail = encode(TOPIC_INSTRUCTION), encode(TOPIC_ANSWER)
    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(100)])
    eos = tokenizer.eos_token_id
    rows = []
    for _ in range(count):
        if topics and rng.random() < config.topic_share:
            index, topic = rng.choice(topics)
            source = topic_head + dialogues[index][: config.topic_max_tokens] + topic_tail
            target = topic
        else:
            ids = rng.choice(dialogues)
            start = rng.randrange(max(1, len(ids) - config.window_tokens + 1))
            window = ids[start: start + config.window_tokens]
            source = repair_head + _mask_spans(window, rng, config.mask_fraction, config.mean_span,
                                               sentinels) + repair_tail
            target = window
        source, target = source + [eos], target + [eos]
        rows.append({"input_ids": source, "attention_mask": [1] * len(source), "labels": target})
    return rows


def save_model(model, tokenizer, folder: Path, config: PretrainConfig, save_dtype: str) -> None:
    """Weights in `save_dtype` (loaders read them as float32), shards under Spaces' 10 MB limit."""
    import copy

    import torch

    stored = copy.deepcopy(model).to(getattr(torch, save_dtype))
    stored.config.dropout_rate = config.dropout_rate
    stored.config.use_cache = True
    stored.generation_config.decoder_start_token_id = tokenizer.pad_token_id
    stored.save_pretrained(folder, safe_serialization=True, max_shard_size="9MB")
    tokenizer.save_pretrained(folder)


@dataclass
class PretrainResult:
    output: Path
    global_step: int
    seconds: float
    losses: list


def pretrain(train: Sequence[Example], output: Path, config: PretrainConfig, *, seed: int,
             tokenizer_dir: Path, save_dtype: str = "float16", save_steps: int = 500,
             progress: bool = True, card=None) -> PretrainResult:
    """Pre-train into `output` (atomically), resuming from the latest complete checkpoint."""
    from transformers import AutoTokenizer, Seq2SeqTrainer, set_seed

    from .run import marker_callback, training_arguments

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    set_seed(seed)
    model = build_model(config, tokenizer, seed)
    rows = pretraining_examples(train, tokenizer, config, config.max_steps * config.batch_size, seed)
    resume_from = checkpoints.latest_complete_checkpoint(output)
    for path in checkpoints.discard_partial(output):
        print(f"deleted unfinished checkpoint {path.name}", file=sys.stderr)
    if resume_from is not None:
        print(f"resuming from {resume_from}", file=sys.stderr)
    args = training_arguments(
        checkpoints.checkpoint_dir(output), learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_steps=config.warmup_steps,
        max_steps=config.max_steps, batch_size=config.batch_size, save_steps=save_steps,
        logging_steps=max(1, min(50, config.max_steps // 20)), seed=seed, progress=progress)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=rows,
                             data_collator=collator(tokenizer), processing_class=tokenizer,
                             callbacks=[marker_callback()])
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - started
    curve = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    model = trainer.model.eval()
    with checkpoints.atomic_folder(output) as folder:
        save_model(model, tokenizer, folder, config, save_dtype)
        plot_losses(curve, folder / "training_loss.png")
        (folder / "training_config.json").write_text(json.dumps(
            {"method": "pretrain", "config": as_dict(config), "seed": seed,
             "global_step": trainer.state.global_step, "seconds": seconds,
             "resumed_from": str(resume_from.name) if resume_from else None,
             "trainable_parameters": model.num_parameters(), "all_parameters": model.num_parameters(),
             "losses": [loss for _, loss in curve]}, indent=2))
        if card is not None:
            (folder / "README.md").write_text(card(trainer.state.global_step, seconds, curve))
    checkpoints.clear_checkpoints(output)
    return PretrainResult(output, trainer.state.global_step, seconds, curve)
