"""The Benchmark tab: dataset-level ROUGE and support from the server's results file and the course's figures."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core

from ..common import LIGHT


class BenchmarkHandlers:
    def __init__(self, studio: core.Studio):
        self.studio = studio

    def benchmark(self):
        """Dataset-level ROUGE from the server's results file, with the course's published rows."""
        view = self.studio.results.view()
        return view.note, core.benchmark_table(view), core.benchmark_figure(view)


def create_benchmark_tab(studio: core.Studio) -> dict:
    benchmark = BenchmarkHandlers(studio).benchmark

    note = gr.Markdown(label="Source")
    table = gr.Dataframe(label="Dataset-level ROUGE (F-measure) and faithfulness support (docs/faithfulness.md)",
                         interactive=False, elem_id="bench-table")
    chart = gr.Plot(label="ROUGE by model", elem_id="bench-chart", show_label=False)
    reload_button = gr.Button("↻ Reload results", size="sm")

    reload_button.click(benchmark, None, [note, table, chart], api_name="benchmark", **LIGHT)
    return {"load": (benchmark, [note, table, chart])}
