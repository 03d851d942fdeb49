"""The panes behind the dashboard's row of tabs (views.py builds the row), one module each: evaluation,
compare runs, export. The W.grad, batch and bias panes are the Plots' own (plots.py); the graph is graph_panel.py."""
