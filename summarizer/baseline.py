"""The DialogSum paper's extractive baseline (Chen et al., 2021): the three longest utterances."""

from __future__ import annotations


def longest_utterances(dialogue: str, n: int = 3) -> str:
    """The `n` longest turns (by words), kept in dialogue order, one per line."""
    turns = [line.strip() for line in dialogue.splitlines() if line.strip()]
    longest = sorted(range(len(turns)), key=lambda i: (-len(turns[i].split()), i))[:n]
    return "\n".join(turns[i] for i in sorted(longest))
