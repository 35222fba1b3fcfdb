"""ROUGE figures published by the course lab, shown next to our own results as reference rows.

Values are F-measures as fractions, as the lab printed them. The lab scored its own saved
summaries (FLAN-T5 base as released, fully fine-tuned "instruct", and LoRA "peft") against
DialogSum's human summaries; it does not state how many test dialogues it used, nor its decoding
settings, so these rows are a reference point, not a like-for-like comparison.
"""

from __future__ import annotations

PUBLISHED_LABEL = "course lab (published)"

# model name in our registry -> the lab's scores
COURSE_LAB_ROUGE: dict[str, dict[str, float]] = {
    "original": {"rouge1": 0.2334, "rouge2": 0.0760, "rougeL": 0.2015, "rougeLsum": 0.2015},
    "instruct": {"rouge1": 0.4216, "rouge2": 0.1804, "rougeL": 0.3384, "rougeLsum": 0.3384},
    "peft-lora": {"rouge1": 0.4081, "rouge2": 0.1633, "rougeL": 0.3251, "rougeLsum": 0.3249},
}

# What each row was in the lab, in its own words.
COURSE_LAB_DESCRIPTIONS: dict[str, str] = {
    "original": "original model (FLAN-T5 base, zero-shot)",
    "instruct": "instruct model (full fine-tune)",
    "peft-lora": "peft model (LoRA)",
}


def published_rows() -> list[dict]:
    """One row per published model: source, model, description and the four ROUGE values."""
    return [{"source": PUBLISHED_LABEL, "model": name, "description": COURSE_LAB_DESCRIPTIONS[name],
             "shots": 0, **scores} for name, scores in COURSE_LAB_ROUGE.items()]
