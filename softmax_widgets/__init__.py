"""softmax_widgets: the 'softmax regression from scratch' lesson, one phase at a time.

The core (data, model ops, Trainer) imports no UI library; the dashboard lives in
`softmax_widgets.app` and observes a Trainer through `Trainer.on_change`.
"""

from . import checks, model
from .checks import CheckResult, check_cross_entropy, check_net, check_sgd, check_softmax
from .data import Dataset, DatasetUnavailableError, load_dataset
from .evaluation import cell_examples, confusion_matrix, evaluate_test_set, per_class_accuracy
from .export import history_to_csv, save_weight_grid, weight_grid_image
from .graph import autograd_graph
from .history import EpochResult, History
from .phases import (
    Batch,
    CustomFunctionError,
    DivergenceError,
    Event,
    Forward,
    Grad,
    LoopState,
    Phase,
    PhaseError,
    TrainerError,
)
from .runs import Run, RunStore
from .trainer import Trainer

__all__ = [
    "Batch",
    "CheckResult",
    "CustomFunctionError",
    "Dataset",
    "DatasetUnavailableError",
    "DivergenceError",
    "EpochResult",
    "Event",
    "Forward",
    "Grad",
    "History",
    "LoopState",
    "Phase",
    "PhaseError",
    "Run",
    "RunStore",
    "Trainer",
    "TrainerError",
    "autograd_graph",
    "cell_examples",
    "check_cross_entropy",
    "check_net",
    "check_sgd",
    "check_softmax",
    "checks",
    "confusion_matrix",
    "evaluate_test_set",
    "history_to_csv",
    "load_dataset",
    "model",
    "per_class_accuracy",
    "save_weight_grid",
    "weight_grid_image",
]
__version__ = "0.1.0"
