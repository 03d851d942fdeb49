"""The dashboard: widgets that observe a Trainer (the core never imports this package).

`dashboard.Dashboard` builds the controls (controls.py), the live figures (plots.py), the row of tabs
(views.py), the graph panel and the formula line (graph_panel.py), Play (player.py), the presentation scale
(presentation.py) and the re-run take-over (rerun.py). What the status line says, and which message wins, is a
model without widgets (status.py, with a divergence's ways out in ways.py); the keys (keys.py) and the settings
widgets (settings.py) are wired by the dashboard, which hands each what it needs.
"""
