"""The "API & limits" tab: how to call the app from Python, and what it accepts."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core

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
    print(model["model"], model["summary"], model["rouge"], model["error"])

# a CSV/JSONL file with a `dialogue` column (optional `summary`, `id`, `topic`)
status, per_model, rows, csv_file = client.predict(
    file=handle_file("dialogues.csv"), models=["longest-3"], api_name="/batch")
```
Endpoints: `/compare`, `/load_example`, `/model_status`, `/batch`, `/benchmark`
(see “Use via API” at the bottom of the page).

**Limits**: dialogue {max_chars:,} characters; uploads {max_mb} MB and {max_rows} dialogues;
one request runs at a time and {queue} may wait — past that the app answers “busy, try again”.
"""


def create_api_tab(queue_size: int) -> None:
    gr.Markdown(API_HELP.format(max_chars=core.MAX_DIALOGUE_CHARS, max_mb=core.MAX_UPLOAD_BYTES // 1024 // 1024,
                                max_rows=core.MAX_BATCH_ROWS, queue=queue_size))
