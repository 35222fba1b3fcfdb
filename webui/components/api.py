"""The "API & limits" tab: how to call the app from Python, and what it accepts."""

from __future__ import annotations

import gradio as gr

from summarizer import settings, studio as core

API_HELP = """### Use it from Python
```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")          # or "<user>/<space>" on Hugging Face
cards_html, rouge_table, chart, results, notes = client.predict(
    dialogue="#Person1#: Are you coming tonight?\\n#Person2#: Yes, I'll be there at eight.",
    reference="#Person2# will come tonight at eight.",
    models=["original", "peft-lora", "longest-3"],
    shot_mode="zero-shot",
    api_name="/compare",
)
for model in results["models"]:
    print(model["card"], model["model"], model["summary"], model["rouge"], model["error"])
    print(model["speaker_mapping"], model["raw_summary"])  # e.g. {{"Amanda": "#Person1#"}}, the model's own text
# keep_as_pasted=True sends the dialogue as it is (no name -> #Person1# mapping); /batch takes it too

# vote: the comparison id, then a card letter (or a model name when not blind), "tie" or "bad"
reveal = client.predict(comparison_id=results["comparison_id"], choice="B", api_name="/vote")
print(reveal["model"], [(m["card"], m["model"]) for m in reveal["models"]])
# blind=True hides model names, ROUGE, timings and prompts until the vote
note, table, chart, board = client.predict(shot_mode="all", blind_only=False, api_name="/leaderboard")

# a CSV/JSONL file with a `dialogue` column (optional `summary`, `id`, `topic`)
status, per_model, rows, csv_file = client.predict(
    file=handle_file("dialogues.csv"), models=["longest-3"], api_name="/batch")
```
Endpoints: `/compare`, `/vote`, `/leaderboard`, `/load_example`, `/model_status`, `/batch`,
`/benchmark` (see “Use via API” at the bottom of the page).

**Limits**: dialogue {max_chars:,} characters; uploads {max_mb} MB and {max_rows} dialogues;
one request runs at a time and {queue} may wait — past that the app answers “busy, try again”.
One vote per comparison, within {ttl:g} hours of it, and {per_hour} votes an hour per address.
"""


SETTINGS_HELP = """### Server settings
Set in the environment of the process that runs `app.py` (a Space's *Variables*); never by a visitor.

"""


def create_api_tab(studio: core.Studio, queue_size: int) -> None:
    gr.Markdown(API_HELP.format(max_chars=core.MAX_DIALOGUE_CHARS, max_mb=core.MAX_UPLOAD_BYTES // 1024 // 1024,
                                max_rows=core.MAX_BATCH_ROWS, queue=queue_size, ttl=studio.votes.ttl / 3600,
                                per_hour=studio.votes.per_hour))
    gr.Markdown(SETTINGS_HELP + settings.table_markdown(), elem_id="settings-table")
