"""What DialogSum Studio's web UI does, as plain functions: no Gradio, no browser.

The web UI (`webui/`) declares the interface and calls into a `Studio`: compare models on one
dialogue (a generator of snapshots while summaries stream in), load DialogSum examples, summarize
an uploaded file, show the benchmark results written by `python -m summarizer evaluate --output`,
take votes on finished comparisons and rank the models by them.

Everything here returns plain data (dataclasses, dicts, pandas frames, matplotlib figures, and
HTML strings in which every piece of user or model text is escaped). Bad input raises `UserError`
with a one-line message; a model that cannot load is reported on its own card.

One service per concern, each owning its state and lock: `models` (ModelCatalog), `examples`
(ExampleLibrary), `votes` (Voting), `benchmark` (BenchmarkResults), `compare` (Comparisons), `batch`
(BatchRunner); `state` builds them as the `Studio`; `inputs` and `render` are plain functions.
"""

from .batch import BatchOutput
from .benchmark import BenchmarkView, read_results
from .compare import BLIND_NOTE, NO_REFERENCE_NOTE, Card, CompareView, Comparisons
from .examples import ExampleLibrary, PickedExample
from .inputs import (DEFAULT_RESULTS, EXAMPLE_SPLITS, MAX_BATCH_ROWS, MAX_BEAMS_LIMIT, MAX_DIALOGUE_CHARS,
                     MAX_NEW_TOKENS_LIMIT, MAX_PROMPT_TOKENS_LIMIT, MAX_REFERENCE_CHARS, MAX_TOPIC_CHARS,
                     MAX_UPLOAD_BYTES, RESULTS_ENV, SHOT_MODES, UPLOAD_SUFFIXES, clean_dialogue,
                     decoding_settings, parse_references, shot_settings)
from .batch import BatchRunner
from .benchmark import BenchmarkResults
from .models import PREFERRED_DEFAULTS, ModelCatalog
from .votes import Voting
from .render import (METRIC_LABELS, batch_tables, benchmark_figure, benchmark_table, compare_figure,
                     summary_segments, leaderboard_figure, leaderboard_note, leaderboard_table, render_cards,
                     render_notes, rouge_figure, rouge_table)
from .state import Studio

__all__ = ["BLIND_NOTE", "BatchOutput", "BatchRunner", "BenchmarkResults", "BenchmarkView", "Card", "CompareView", "Comparisons",
           "ExampleLibrary", "ModelCatalog", "Voting", "DEFAULT_RESULTS",
           "EXAMPLE_SPLITS", "MAX_BATCH_ROWS", "MAX_BEAMS_LIMIT", "MAX_DIALOGUE_CHARS",
           "MAX_NEW_TOKENS_LIMIT", "MAX_PROMPT_TOKENS_LIMIT", "MAX_REFERENCE_CHARS",
           "MAX_TOPIC_CHARS", "MAX_UPLOAD_BYTES", "METRIC_LABELS", "NO_REFERENCE_NOTE",
           "PREFERRED_DEFAULTS", "PickedExample", "RESULTS_ENV", "SHOT_MODES", "Studio",
           "UPLOAD_SUFFIXES", "batch_tables", "benchmark_figure", "benchmark_table",
           "clean_dialogue", "compare_figure", "decoding_settings", "summary_segments",
           "leaderboard_figure", "leaderboard_note", "leaderboard_table", "parse_references",
           "read_results", "render_cards", "render_notes", "rouge_figure", "rouge_table",
           "shot_settings"]
