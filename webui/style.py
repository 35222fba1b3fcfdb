"""The page's CSS (Gradio 6 takes it at launch)."""

CSS = """
.ds-cards { display: flex; gap: 12px; align-items: stretch; flex-wrap: wrap; }
.ds-cards.ds-grid { display: grid; }  /* rows: models, columns: templates */
.ds-grid-head { font-weight: 600; padding: 4px 8px; border-bottom: 2px solid var(--border-color-primary); overflow-wrap: anywhere; }
.ds-template { font-size: 0.8em; opacity: 0.75; margin-left: 6px; }
.ds-card { flex: 1 1 260px; min-width: 240px; border: 1px solid var(--border-color-primary);
  border-radius: 10px; padding: 12px; background: var(--block-background-fill); }
.ds-card-head { display: flex; gap: 8px; align-items: baseline; margin-bottom: 8px; flex-wrap: wrap; }
.ds-model { font-weight: 700; font-size: 1.05em; }
.ds-label { font-weight: 700; font-size: .8em; padding: 0 6px; border-radius: 6px;
  background: var(--background-fill-secondary); }
.ds-pick { font-size: .8em; padding: 1px 8px; border-radius: 8px; background: #fde68a; color: #713f12; }
.ds-card[data-picked="true"] { border: 2px solid #f59e0b; }
.ds-kind { font-size: .8em; color: var(--body-text-color-subdued); }
.ds-state { margin-left: auto; font-size: .8em; padding: 1px 8px; border-radius: 8px;
  background: var(--background-fill-secondary); }
.ds-done { background: #dcfce7; color: #14532d; }
.ds-error { background: #fee2e2; color: #7f1d1d; }
.ds-state.ds-error { padding: 1px 8px; }
div.ds-error { padding: 8px; border-radius: 6px; }
.ds-running { background: #e0f2fe; color: #0c4a6e; }
.ds-summary { white-space: pre-wrap; line-height: 1.45; min-height: 3em; }
.ds-summary mark { background: #fde68a; color: #111; padding: 0 1px; border-radius: 2px; }
.ds-summary mark.unsupported, .ds-note mark.unsupported { background: none; color: inherit; padding: 0;
  text-decoration: underline wavy #dc2626; text-decoration-thickness: 1.5px; text-underline-offset: 3px; }
.ds-support { color: #9a3412; }
.ds-streaming { color: var(--body-text-color-subdued); }
.ds-stats, .ds-note, .ds-speakers { font-size: .82em; color: var(--body-text-color-subdued); margin-top: 6px; }
.ds-notice { font-size: .85em; margin-top: 6px; padding: 4px 6px; border-radius: 6px;
  background: #fef9c3; color: #713f12; }
.ds-rouge { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: .85em; margin-top: 6px; }
.ds-rouge span { white-space: nowrap; }
.ds-prompt { margin-top: 6px; font-size: .85em; }
.ds-prompt pre { white-space: pre-wrap; max-height: 260px; overflow: auto; font-size: .9em; }
"""
