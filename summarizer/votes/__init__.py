"""People's votes on the Studio's comparisons: storage (SQLite), the leaderboard (Bradley-Terry /
Luce strengths beside ROUGE), exports, and an optional copy on the Hugging Face hub."""

from .store import Ballot, Shown, ShownCard, VoteRefused, VoteStore, default_path, dialogue_digest

__all__ = ["Ballot", "Shown", "ShownCard", "VoteRefused", "VoteStore", "default_path", "dialogue_digest"]
