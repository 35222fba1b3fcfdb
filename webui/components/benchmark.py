"""The Benchmark tab: dataset-level ROUGE and support per model, template and shots from the server's
results file, beside the course's figures."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core

from ..common import LIGHT


class BenchmarkHandlers:
    def __init__(self, studio: core.Studio):
        self.studio = studio

    def benchmark(self):
        """Dataset-level ROUGE from the server's results file, one row per model, prompt template and
        shots (a file written before templates reads as the "experiment" template), with the course's
        published rows."""
        view = self.studio.results.view()
        return view.note, core.benchmark_table(view), core.benchmark_figure(view)


def create_benchmark_tab(studio: core.Studio) -> dict:
    benchmark = BenchmarkHandlers(studio).benchmark

    note = gr.Markdown(label="Source")
    table = gr.Dataframe(label="Dataset-level ROUGE (F-measure) and faithfulness support (docs/faithfulness.md)",
                         interactive=False, elem_id="bench-table")
    chart = gr.Plot(label="ROUGE by model and template", elem_id="bench-chart", show_label=False)
    reload_button = gr.Button("↻ Reload results", size="sm")

    reload_button.click(benchmark, None, [note, table, chart], api_name="benchmark", **LIGHT)
    return {"load": (benchmark, [note, table, chart])}
