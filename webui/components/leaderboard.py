"""The Leaderboard tab: the models ranked by people's votes (Bradley-Terry / Luce strength with a
95% interval), beside ROUGE and faithfulness support, and how often each agrees with people. Same numbers as
`python -m summarizer votes stats`."""

from __future__ import annotations

import gradio as gr

from summarizer import studio as core
from summarizer.votes.leaderboard import SHOT_FILTERS

from ..common import LIGHT, shown_to_user


class LeaderboardHandlers:
    def __init__(self, studio: core.Studio):
        self.studio = studio

    def leaderboard(self, shot_mode: str = "all", blind_only: bool = False):
        """Per model: votes, wins, win rate, strength with its 95% interval, mean ROUGE; and how
        often the people's pick had the highest ROUGE or support. Filters: shot mode, blind votes only."""
        with shown_to_user():
            board = self.studio.voting.leaderboard(shot_mode, bool(blind_only))
        return (core.leaderboard_note(board), core.leaderboard_table(board), core.leaderboard_figure(board),
                board.to_dict())



def create_leaderboard_tab(studio: core.Studio) -> dict:
    leaderboard = LeaderboardHandlers(studio).leaderboard
    with gr.Row():
        shot_mode = gr.Radio(list(SHOT_FILTERS), value="all", label="Shot mode", elem_id="board-shots")
        blind_only = gr.Checkbox(False, label="Blind votes only", elem_id="board-blind")
        refresh = gr.Button("↻ Refresh", size="sm", scale=0)
    note = gr.Markdown(elem_id="board-note")
    table = gr.Dataframe(label="People's leaderboard, with ROUGE and faithfulness support beside it", interactive=False,
                         elem_id="board-table")
    chart = gr.Plot(label="Strength", elem_id="board-chart", show_label=False)
    with gr.Accordion("Raw numbers (JSON)", open=False):
        raw = gr.JSON(label="leaderboard")

    inputs, outputs = [shot_mode, blind_only], [note, table, chart, raw]
    refresh.click(leaderboard, inputs, outputs, api_name="leaderboard", **LIGHT)
    gr.on([shot_mode.change, blind_only.change], leaderboard, inputs, outputs, api_visibility="private", **LIGHT)
    return {"load": (leaderboard, inputs, outputs)}
