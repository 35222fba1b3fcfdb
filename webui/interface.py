"""The whole page: the tabs in order, and the few events that span tabs (page load)."""

from __future__ import annotations

import gradio as gr

from summarizer.studio import Studio
from training.jobs import TrainingJobs

from . import admission
from .common import LIGHT
from .components.api import create_api_tab
from .components.batch import create_batch_tab
from .components.benchmark import create_benchmark_tab
from .components.compare import FILL_SAMPLE_JS, create_compare_tab
from .components.leaderboard import create_leaderboard_tab
from .components.tools import add_summarize_endpoint
from .components.train import create_train_tab

CONCURRENCY = 1  # two CPU cores: one generation at a time is fastest for everyone

INTRO = """# DialogSum Studio
Summarize a dialogue with several models at once: FLAN-T5 as released, fine-tuned and PEFT
versions, and the extractive *longest-3* baseline. Paste a conversation (or load one from DialogSum),
choose the models, and compare their summaries, speed and ROUGE against a reference; then vote
for the best summary (blind by default) and see the people's leaderboard beside ROUGE.
"""


class ModelLists:
    """Compare's and Batch's model checkboxes. Gradio checks every request's model names against a
    component's choices, so a model registered at run time (a finished training job) joins them
    here, for every visitor and API client, not only for the page that trained it."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.components: list[gr.CheckboxGroup] = []

    def registered(self, spec=None) -> None:
        self.studio.models.registered(spec)
        choices = [tuple(choice) for choice in self.studio.models.model_choices()]
        for component in self.components:
            component.choices = choices


class PageLoad:
    """What the page fetches as it opens: the model lists once the status check is done."""

    def __init__(self, studio: Studio, preselected: list[str]):
        self.studio, self.preselected = studio, preselected

    def models(self):
        self.studio.models.wait_for_statuses(15)
        choices, runnable = self.studio.models.model_choices(), self.studio.models.default_models()
        # Once checked, a model that cannot load is no longer pre-selected; when nothing
        # changed, the value is left alone so that early clicks are not undone.
        update = (dict(choices=choices) if runnable == self.preselected
                  else dict(choices=choices, value=runnable))
        return gr.CheckboxGroup(**update), gr.CheckboxGroup(**update)


def create_interface(studio: Studio, queue_size: int = 16, concurrency: int = CONCURRENCY,
                     jobs: TrainingJobs | None = None) -> gr.Blocks:
    """The Blocks of the app around `studio` (and `jobs`, the Train tab's service: by default one
    on the studio's registry and data, kept in $STUDIO_JOBS_DIR).

    `concurrency` model requests (/compare, /batch, /summarize) run at once (one on a CPU; see
    summarizer.hosting.queue_plan); `queue_size` more may wait, and past that they are refused
    with a one-line "busy, try again" (webui/admission.py). Gradio's queue itself has no size
    limit: a vote is never refused because comparisons are waiting.
    """
    preselected = studio.models.default_models()  # before the status check: what the registry lists
    lists = ModelLists(studio)
    jobs = jobs or TrainingJobs(studio.registry, data_source=studio.examples.data_source,
                                on_registered=lists.registered)
    with gr.Blocks(title="DialogSum Studio", delete_cache=(3600, 3600), analytics_enabled=False) as demo:
        admission.install(demo, running=concurrency, waiting=queue_size)  # before the tabs' events
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                compare = create_compare_tab(studio)
            with gr.Tab("Batch", id="batch"):
                batch = create_batch_tab(studio)
            with gr.Tab("Benchmark", id="benchmark"):
                benchmark = create_benchmark_tab(studio)
            with gr.Tab("Leaderboard", id="leaderboard") as leaderboard_tab:
                leaderboard = create_leaderboard_tab(studio)
            with gr.Tab("Train", id="train"):
                train = create_train_tab(jobs, studio.models, [compare["models"], batch["models"]])
            with gr.Tab("API & limits", id="api"):
                create_api_tab(studio, queue_size)
        lists.components += [compare["models"], batch["models"]]
        add_summarize_endpoint(studio)  # /summarize: one model, text out (an MCP tool with STUDIO_MCP=1)

        demo.load(PageLoad(studio, preselected).models, None, [compare["models"], batch["models"]],
                  api_visibility="private", **LIGHT)
        load_benchmark, benchmark_outputs = benchmark["load"]
        demo.load(load_benchmark, None, benchmark_outputs, api_visibility="private", **LIGHT)
        # Blind is on for people from the first paint; the component's own value (off) stays the
        # API's default (see compare.py).
        demo.load(None, None, compare["blind"], js="() => true")
        demo.load(None, None, compare["sample"], js=FILL_SAMPLE_JS)
        # The board follows the votes: on opening the tab and after each vote.
        leaderboard_tab.select(*leaderboard["load"], api_visibility="private", **LIGHT)
        # A `?job=ID` link opens the Train tab's view on that job (a reload finds the job again).
        demo.load(*train["load"], api_visibility="private", **LIGHT)
        compare["voted"].success(*leaderboard["load"], api_visibility="private", **LIGHT)

    demo.queue(default_concurrency_limit=concurrency, max_size=None)
    return demo
