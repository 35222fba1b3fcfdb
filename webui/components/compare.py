"""The Compare tab: a dialogue (pasted or a DialogSum example), models, prompt and decoding
settings; one card per model as the summaries stream in, the vote, a ROUGE table and chart."""

from __future__ import annotations

import json

import gradio as gr

from summarizer import studio as core
from summarizer.prompts import DEFAULT_MAX_PROMPT_TOKENS, MAX_SHOTS, SHOT_STRATEGIES
from summarizer.request import DEFAULTS
from summarizer.templates import BUILTIN, MAX_TEMPLATE_CHARS

from ..admission import MODEL_RUN, admitted
from ..common import LIGHT, shown_to_user
from .vote import create_vote_panel


# The page opens on this conversation, so a first visit is one click from a comparison. Our own
# text, not DialogSum's (which may not be committed).
SAMPLE_DIALOGUE = ("#Person1#: Hi Ben, are we still meeting at the station tomorrow?\n"
                   "#Person2#: Yes, but can we make it ten instead of nine? My train is late.\n"
                   "#Person1#: Ten is fine. I will bring the tickets for the museum.\n"
                   "#Person2#: Great, thank you. See you at ten at the station.")
SAMPLE_REFERENCE = "Ben and #Person1# will meet at the station at ten; #Person1# brings the museum tickets."
# Filled in the browser on page load: as component values they would become the API's defaults,
# and a /compare call without a dialogue must be refused, not summarize the sample.
FILL_SAMPLE_JS = f"() => [{json.dumps(SAMPLE_DIALOGUE)}, {json.dumps(SAMPLE_REFERENCE)}]"


class CompareHandlers:
    """The Compare tab's events, on the Studio (their signatures and docstrings are the API's)."""

    def __init__(self, studio: core.Studio):
        self.studio = studio

    def model_status(self):
        """Each registry model's status (ready / loaded / error with the reason)."""
        self.studio.models.refresh_statuses()
        return gr.CheckboxGroup(choices=self.studio.models.model_choices()), self.studio.models.status_table()

    def load_example(self, split: str = "validation", how: str = "random", index: float | None = -1):
        """A DialogSum dialogue with its reference(s) and topic: how = random | next | index."""
        with shown_to_user():
            picked = self.studio.examples.pick(split, how, index)
        return picked.dialogue, picked.reference, picked.topic, picked.index, picked.info

    def compare(self, dialogue: str, reference: str = "", topic: str = "",
                models: list[str] | None = None, shot_mode: str = "zero-shot", n_shots: float = 2,
                shot_strategy: str = "random", shot_ids: str = "", max_new_tokens: float = DEFAULTS.max_new_tokens,
                num_beams: float = 1, do_sample: bool = False, temperature: float = 1.0,
                top_p: float = 1.0, seed: float = 0, max_prompt_tokens: float = DEFAULT_MAX_PROMPT_TOKENS,
                blind: bool = False, keep_as_pasted: bool = False, prompts: list[str] | None = None,
                written_prompt: str = ""):
        """Summaries of one dialogue by each chosen model, streamed, with ROUGE vs the reference.

        The results carry a `comparison_id` for /vote. `blind` shuffles the cards and keeps model
        names, ROUGE, timings and prompts out of every output until the vote. A chat's names become
        #Person1#, #Person2# for models trained on DialogSum and come back in their summaries;
        `keep_as_pasted` sends the text as it is instead.

        Args:
            dialogue: the conversation, one turn a line ("Name: ...", "#Person1#: ...", chat exports).
            reference: a human summary to score against with ROUGE (optional).
            topic: the dialogue's topic, used by the prompts that ask for it (optional).
            models: registry names to run (see /model_status); empty: the pre-selected ones.
            shot_mode: "zero-shot", "one-shot" or "few-shot" (examples from DialogSum's train split).
            n_shots: examples in a few-shot prompt.
            shot_strategy: how examples are chosen: "random", "topic" (same topic) or "fixed" (shot_ids).
            shot_ids: comma-separated DialogSum ids for the "fixed" strategy.
            max_new_tokens: the longest summary, in tokens.
            num_beams: beam search width (1: greedy).
            do_sample: sample instead of greedy / beam decoding.
            temperature: sampling temperature.
            top_p: nucleus sampling mass.
            seed: the sampling seed.
            max_prompt_tokens: the prompt's token budget (long dialogues are cut to it).
            blind: hide model names and scores until a vote (one template only).
            keep_as_pasted: send the dialogue as pasted, without mapping names to #PersonN# tags.
            prompts: up to three prompt templates: built-in names (see `python -m summarizer
                prompts`) or template texts with {dialogue} once; empty: each model's own. With two
                or more, the cards are a grid (rows models, columns templates) and each result's
                `template` names its column; a written template is named custom-<8 hex digits>.
            written_prompt: one more template text, as typed in the page's box.
        """
        with shown_to_user():
            shots = core.shot_settings(shot_mode, n_shots, shot_strategy, shot_ids)
            decoding = core.decoding_settings(max_new_tokens, num_beams, do_sample, temperature,
                                              top_p, seed, max_prompt_tokens)
            views = self.studio.comparisons.compare(
                dialogue, reference, models or [], shots, decoding, topic, blind=bool(blind),
                speakers="keep" if keep_as_pasted else "auto", prompts=_prompts(prompts, written_prompt))
            for view in views:
                if not view.done:  # no comparison to vote on while one is running
                    # Plain empty values, not gr.skip(): a skip is a property update, for which
                    # Gradio builds and keeps a new component per output and call (the soak
                    # benchmark saw the server grow by it).
                    yield core.render_cards(view), None, None, None, core.render_notes(view), None
                else:
                    yield (core.render_cards(view), core.rouge_table(view), core.compare_figure(view),
                           view.to_dict(), core.render_notes(view), view)



def _prompts(chosen, written) -> list[str]:
    """The templates asked for: the ticked built-ins, then the written one."""
    prompts = [p for p in (chosen if isinstance(chosen, (list, tuple)) else [chosen] if chosen else [])
               if isinstance(p, str)]
    if isinstance(written, str) and written.strip():
        prompts.append(written)
    return prompts


TEMPLATE_LIST = "\n".join(f"- `{t.name}`: {t.description}" for t in BUILTIN.values())


def _template_inputs() -> dict:
    """The Prompt lab: up to three templates, built-in or written, each a column of the grid."""
    c = {}
    with gr.Accordion("Prompt templates (the course's prompt-engineering lab)", open=False):
        # A dropdown that takes custom values: the API's `prompts` may hold template texts too.
        c["prompts"] = gr.Dropdown(list(BUILTIN), value=[], multiselect=True, allow_custom_value=True,
                                   label="Templates", elem_id="prompts",
                                   info="none chosen: each model's own; two or more: a grid, rows models, "
                                        "columns templates (at most three)")
        c["written_prompt"] = gr.Textbox("", label="Your template", lines=3, max_lines=8, elem_id="written-prompt",
                                         placeholder="Dialogue:\n\n{dialogue}\n\nWhat was going on?",
                                         info=f"{{dialogue}} exactly once; at most {MAX_TEMPLATE_CHARS:,} "
                                              "characters; other braces stay as typed")
        gr.Markdown(TEMPLATE_LIST)
    return c


def _dialogue_inputs() -> dict:
    """The dialogue, its reference and the DialogSum example picker."""
    c = {}
    c["dialogue"] = gr.Textbox(
        label="Dialogue", lines=10, max_lines=20, elem_id="dialogue",
        placeholder="#Person1#: Hi, is this seat free?\n#Person2#: Yes, go ahead.",
        info=f"One turn per line; at most {core.MAX_DIALOGUE_CHARS:,} characters.")
    c["reference"] = gr.Textbox(
        value="", label="Reference summary (optional)", lines=2, max_lines=8, elem_id="reference",
        info="Used for ROUGE. Several references: separate them with a blank line.")
    with gr.Accordion("Load a DialogSum example", open=True):
        with gr.Row():
            c["split"] = gr.Dropdown(list(core.EXAMPLE_SPLITS), value="validation", label="Split", scale=1)
            c["index"] = gr.Number(value=0, precision=0, label="Example #", scale=1, minimum=0)
            c["topic"] = gr.Textbox("", label="Topic", scale=2, max_lines=1, info="used by topic-matched shots")
        for how in ("random", "next", "index"):
            c[f"how_{how}"] = gr.Textbox(how, visible=False)
        with gr.Row():
            c["random_button"] = gr.Button("Random example", size="sm")
            c["next_button"] = gr.Button("Next example ▶", size="sm")
            c["index_button"] = gr.Button("Load #", size="sm")
        c["example_info"] = gr.Markdown(label="Example")
    return c


def _run_inputs(studio: core.Studio) -> dict:
    """Models, prompt and decoding settings, Blind and the speaker switch."""
    c = {}
    c["models"] = gr.CheckboxGroup(studio.models.model_choices(), value=studio.models.default_models(),
                                   label="Models", info="status after each name", elem_id="models")
    c["shot_mode"] = gr.Radio(list(core.SHOT_MODES), value="zero-shot", label="Prompt", elem_id="shot-mode",
                              info="solved DialogSum train examples put before the dialogue")
    with gr.Row():
        c["n_shots"] = gr.Slider(2, MAX_SHOTS, value=2, step=1, label="Shots (few-shot)")
        c["shot_strategy"] = gr.Radio(list(SHOT_STRATEGIES), value="random", label="Shot choice")
    c["shot_ids"] = gr.Textbox("", label="Fixed shot ids", max_lines=1, placeholder="train_0, train_1 (for 'fixed')")
    with gr.Accordion("Decoding settings", open=False):
        c["max_new_tokens"] = gr.Slider(8, core.MAX_NEW_TOKENS_LIMIT, value=DEFAULTS.max_new_tokens, step=1,
                                        label="Max new tokens")
        c["num_beams"] = gr.Slider(1, core.MAX_BEAMS_LIMIT, value=1, step=1, label="Beams (1 = greedy, streams)")
        c["do_sample"] = gr.Checkbox(False, label="Sample")
        with gr.Row():
            c["temperature"] = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature")
            c["top_p"] = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
        with gr.Row():
            c["seed"] = gr.Number(0, precision=0, label="Seed")
            c["max_prompt_tokens"] = gr.Slider(64, core.MAX_PROMPT_TOKENS_LIMIT, value=DEFAULT_MAX_PROMPT_TOKENS,
                                               step=16, label="Prompt token budget")
    # The page turns Blind on as it loads (see interface.py); the value here is the API's
    # default, so scripts keep getting model names unless they ask for blind=True.
    c.update(_template_inputs())
    c["blind"] = gr.Checkbox(False, label="Blind", elem_id="blind",
                             info="shuffle the cards and hide model names and scores until you vote")
    c["keep_as_pasted"] = gr.Checkbox(False, label="Keep the text as pasted", elem_id="keep-pasted",
                                      info="off: names become #Person1#, #Person2# for models trained "
                                           "on DialogSum, and come back in their summaries")
    with gr.Row():
        c["run_button"] = gr.Button("Run ▶", variant="primary", elem_id="run")
        c["status_button"] = gr.Button("↻ Model status", size="sm")
    return c


def _outputs() -> dict:
    """Notes, cards, the link button, the ROUGE table and chart, raw JSON and model status."""
    c = {}
    c["notes"] = gr.Markdown(label="Notes", elem_id="notes")
    c["cards"] = gr.HTML(label="Summaries", elem_id="cards")
    c["view_state"] = gr.State(None)  # the finished comparison, kept on the server for the vote
    c["vote_slot"] = gr.Column()
    # Gradio's deep link: the page's values as this visitor sees them (cards, table, chart, notes),
    # saved on the server under an id that ?deep_link= reopens; blind cards stay blind.
    gr.DeepLinkButton("🔗 Copy a link to this comparison", copied_value="Link copied", size="sm")
    with gr.Row():
        c["table"] = gr.Dataframe(label="ROUGE vs the reference (F-measure)", interactive=False,
                                  elem_id="rouge-table", scale=1)
        c["chart"] = gr.Plot(label="ROUGE by model", elem_id="rouge-chart", scale=1, show_label=False)
    with gr.Accordion("Raw results (JSON)", open=False):
        c["results"] = gr.JSON(label="results")
    with gr.Accordion("Model status", open=False):
        c["status_table"] = gr.JSON(label="registry")
    return c


RUN_INPUTS = ("dialogue", "reference", "topic", "models", "shot_mode", "n_shots", "shot_strategy", "shot_ids",
              "max_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "seed", "max_prompt_tokens",
              "blind", "keep_as_pasted", "prompts", "written_prompt")
RUN_OUTPUTS = ("cards", "table", "chart", "results", "notes", "view_state")


def create_compare_tab(studio: core.Studio) -> dict:
    """Declare the tab and wire it to a CompareHandlers on `studio`; returns the components by id."""
    handlers = CompareHandlers(studio)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            c = _dialogue_inputs()
        with gr.Column(scale=2):
            c.update(_run_inputs(studio))
    c.update(_outputs())
    with c["vote_slot"]:  # under the cards, declared once the outputs it redraws exist
        vote = create_vote_panel(studio, c["view_state"], c["dialogue"],
                                 [c[k] for k in ("cards", "table", "chart", "results", "notes")])
    _wire(c, handlers, vote)
    return {**c, "voted": vote["voted"], "sample": [c["dialogue"], c["reference"]]}


def _wire(c: dict, handlers: CompareHandlers, vote: dict) -> None:
    example_outputs = [c[k] for k in ("dialogue", "reference", "topic", "index", "example_info")]
    for button, how, api in (("random_button", "how_random", dict(api_name="load_example")),
                             ("next_button", "how_next", dict(api_visibility="private")),
                             ("index_button", "how_index", dict(api_visibility="private"))):
        c[button].click(handlers.load_example, [c["split"], c[how], c["index"]], example_outputs, **api, **LIGHT)
    c["status_button"].click(handlers.model_status, None, [c["models"], c["status_table"]],
                             api_name="model_status", **LIGHT)
    hide_vote, show_vote = vote["hide"], vote["show"]
    c["run_button"].click(*hide_vote, api_visibility="private", queue=False)
    c["run_button"].click(
        admitted(handlers.compare), [c[k] for k in RUN_INPUTS], [c[k] for k in RUN_OUTPUTS],
        api_name="compare", **MODEL_RUN,
    ).success(*show_vote, api_visibility="private", queue=False)
