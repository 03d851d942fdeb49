"""softmax_widgets: the 'softmax regression from scratch' lesson, one phase at a time.

The core (data, model ops, Trainer) imports no UI library; the dashboard lives in
`softmax_widgets.ui` (imported as `softmax_widgets.app`) and observes a Trainer through `Trainer.on_change`.
"""

import importlib

# name -> the module it lives in. Imported on first use (PEP 562), not here: `softmax-widgets app` and `lab` run
# in a process that never needs torch (importing it costs ~700 MB of memory beside Voila's kernels), and
# `import softmax_widgets.cli` runs this file first
_WHERE = {
    "checks": "", "model": "",
    **dict.fromkeys(["CheckResult", "check_cross_entropy", "check_mlp_net", "check_net", "check_relu", "check_sgd",
                     "check_softmax"], "checks"),
    **dict.fromkeys(["Dataset", "DatasetUnavailableError", "load_dataset"], "data"),
    **dict.fromkeys(["cell_examples", "confusion_matrix", "evaluate_test_set", "per_class_accuracy"], "evaluation"),
    **dict.fromkeys(["history_to_csv", "save_weight_grid", "weight_grid_image"], "export"),
    "autograd_graph": "graph",
    **dict.fromkeys(["EpochResult", "History"], "history"),
    **dict.fromkeys(["Batch", "CustomFunctionError", "DivergenceError", "Event", "Forward", "Grad", "LoopState",
                     "Phase", "PhaseError", "TrainerError"], "phases"),
    **dict.fromkeys(["Run", "RunStore"], "runs"),
    "Trainer": "trainer",
}


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'softmax_widgets' has no attribute {name!r}")
    value = importlib.import_module(f".{where or name}", __name__)
    if where:
        value = getattr(value, name)
    globals()[name] = value  # once: later look-ups are plain attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "check_mlp_net",
    "check_net",
    "check_relu",
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
