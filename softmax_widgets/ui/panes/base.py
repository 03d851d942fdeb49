"""What the tab panes share: a figure of theirs, and a status line's green and red words."""

from __future__ import annotations

import html

from bqplot import Figure
from ipywidgets import Layout

__all__ = ["bad", "fig", "ok"]


def fig(marks, axes, title, width="460px", height="300px", margin=(30, 50, 60, 10), **kw) -> Figure:
    top, bottom, left, right = margin
    return Figure(marks=list(marks), axes=list(axes), title=title, animation_duration=0,
                  fig_margin=dict(top=top, bottom=bottom, left=left, right=right), title_style={"font-size": "12px"},
                  layout=Layout(width=width, height=height), **kw)


def ok(text: str) -> str:
    return f"<span style='color:#2b6e2b'>{html.escape(text)}</span>"


def bad(text: str) -> str:
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"
