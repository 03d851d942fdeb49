"""`from softmax_widgets.app import Dashboard` keeps working: the dashboard lives in `softmax_widgets.ui`."""

from .ui.dashboard import KEYS, Dashboard

__all__ = ["KEYS", "Dashboard"]
