"""softmax_widgets: the 'softmax regression from scratch' lesson, one phase at a time.

The core (data, model ops, Trainer) imports no UI library; the dashboard lives in
`softmax_widgets.app` and observes a Trainer through `Trainer.on_change`.
"""

from . import model
from . import model as ops
from .data import Dataset, DatasetUnavailableError, load_dataset
from .history import EpochResult, History
from .phases import CustomFunctionError, DivergenceError, Event, Phase, PhaseError, TrainerError
from .trainer import Trainer

__all__ = [
    "CustomFunctionError",
    "Dataset",
    "DatasetUnavailableError",
    "DivergenceError",
    "EpochResult",
    "Event",
    "History",
    "Phase",
    "PhaseError",
    "Trainer",
    "TrainerError",
    "load_dataset",
    "model",
    "ops",
]
__version__ = "0.1.0"
