"""The vote under a finished comparison: pick the best summary (or "all equally good" / "all
bad"), then the names are revealed. Also the `/vote` API endpoint, which takes the same vote. Neither goes through the queue that
comparisons wait in (see VOTES).

The comparison the page votes on is the `CompareView` kept in session state on the server; the
API names it by its comparison id. Either way the vote is checked against what the server
recorded, never against what the client says it was shown.
"""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core
from summarizer.studio import CompareView

from summarizer.votes.store import lasts_until_restart

from ..common import shown_to_user

UNTIL_RESTART = ("Votes are kept until this Space restarts (it has no persistent storage: "
                 "see docs/hosting.md, STUDIO_VOTES_DB).")

# Votes skip Gradio's queue where the caller lets them: a vote is a few milliseconds of SQLite
# (writers serialize on the database's own lock), so it runs at once over plain HTTP, the page's
# button and POST /gradio_api/api/vote/ alike. gradio_client always joins the queue: there votes
# run in a group of their own with no limit, and the queue has no size limit (model runs are
# bounded by webui/admission.py instead), so a vote never waits behind, or is refused for,
# comparisons.
VOTES = dict(queue=False, concurrency_id="votes", concurrency_limit=None)


def client_address(request: gr.Request | None) -> str | None:
    """The address Gradio reports for the caller: what the hourly vote limit counts by."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


class VoteHandlers:
    """The vote's events, on the Studio's voting service."""

    def __init__(self, studio: core.Studio):
        self.studio = studio

    def show(self, view: CompareView | None):
        if view is None or view.comparison_id is None:
            note = view.vote_note if view is not None else ""
            return gr.Column(visible=False), gr.Radio(), gr.Checkbox(), gr.Button(), note
        return (gr.Column(visible=True), gr.Radio(choices=view.vote_choices(), value=None, interactive=True),
                gr.Checkbox(value=False, interactive=True), gr.Button(interactive=True), "")

    def hide(self):
        return gr.Column(visible=False), ""

    def cast(self, view: CompareView | None, choice: str | None, share: bool, text: str, request: gr.Request):
        if view is None or view.comparison_id is None:
            raise gr.Error("Run a comparison first, then vote on it.", print_exception=False)
        with shown_to_user():
            ballot = self.studio.voting.vote(view.comparison_id, choice or "", client_address(request), share, text)
        view.ballot = ballot
        if ballot.verdict == "best":
            verdict = f"you picked **{ballot.winner_label}: {ballot.winner}**"
        else:
            verdict = "you found them all equally good" if ballot.verdict == "tie" else "you found them all bad"
        thanks = (f"✓ Vote stored: {verdict}." + (" Names revealed above." if view.blind else "")
                  + (" The dialogue was shared with it." if ballot.dialogue is not None else ""))
        return (core.render_cards(view), core.rouge_table(view), core.compare_figure(view), view.to_dict(),
                core.render_notes(view), thanks, gr.Radio(choices=view.vote_choices(), interactive=False),
                gr.Checkbox(interactive=False), gr.Button(interactive=False), view)

    def vote(self, comparison_id: str, choice: str, share_dialogue: bool = False, dialogue: str = "",
             request: gr.Request = None) -> dict:
        """Vote on a finished comparison: its `comparison_id` (in /compare's results) and a card
        letter, or a model name for a comparison that was not blind, or "tie" / "bad". With
        `share_dialogue`, `dialogue` (the one compared) is stored with the vote. Returns the
        reveal: every card with its model, kind, summary and ROUGE, and the pick."""
        with shown_to_user():
            ballot = self.studio.voting.vote(str(comparison_id or ""), str(choice or ""), client_address(request),
                                 bool(share_dialogue), dialogue if isinstance(dialogue, str) else "")
        return ballot.to_dict()



def create_vote_panel(studio: core.Studio, view_state: gr.State, dialogue: gr.Textbox,
                      revealed: list) -> dict:
    """The panel; `revealed` are the compare outputs redrawn at the reveal (cards, table, chart,
    results, notes)."""
    handlers = VoteHandlers(studio)
    with gr.Column(visible=False, elem_id="vote-panel") as panel:
        gr.Markdown("**Which summary is best?** One vote per comparison."
                    + (f" {UNTIL_RESTART}" if lasts_until_restart(studio.votes.path) else ""),
                    elem_id="vote-intro")
        choice = gr.Radio([], label="Your vote", elem_id="vote-choice")
        with gr.Row():
            share = gr.Checkbox(False, label="Share this dialogue with my vote", elem_id="vote-share",
                                info="Unticked, only its SHA-256 (to count duplicates) is kept with the summaries.")
            button = gr.Button("Vote", variant="primary", elem_id="vote", scale=0)
    status = gr.Markdown(elem_id="vote-status")

    gr.api(handlers.vote, api_name="vote", **VOTES)
    voted = button.click(handlers.cast, [view_state, choice, share, dialogue],
                         [*revealed, status, choice, share, button, view_state], api_visibility="private", **VOTES)
    return {"show": (handlers.show, [view_state], [panel, choice, share, button, status]),
            "hide": (handlers.hide, None, [panel, status]), "voted": voted}
