"""What the undo ring, the state files and the diagnosis need from a Trainer, said once (and type-checkable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from .data import Dataset
from .history import History
from .phases import LoopState, Phase


class TrainerState(Protocol):
    """The Trainer as undo.py, persist.py and diagnosis.py see it: its numbers, its place in the loop, its shuffle."""

    data: Dataset
    device: torch.device
    W: torch.Tensor  # (inputs, classes) leaf, requires_grad (the lesson's model only)
    b: torch.Tensor
    params: dict[str, torch.Tensor]  # W, b for the lesson; a model's own (models.py)
    model: Any  # None: the lesson's softmax regression
    model_name: str
    X: torch.Tensor | None
    y: torch.Tensor | None
    y_hat: torch.Tensor | None
    loss: torch.Tensor | None
    loss_value: float
    correct: int
    batch_indices: torch.Tensor | None
    shuffle: torch.Tensor | None  # this epoch's permutation of the training images
    position: int  # images of that permutation drawn so far
    generator: torch.Generator  # draws each epoch's permutation
    iteration: int
    epoch: int
    last_phase: Phase | None
    state: LoopState
    history: History
    epoch_totals: list  # summed loss, correct, images of this epoch so far
    epoch_seconds: float
    softmax: Callable
    loss_fn: Callable
    optimizer: Callable
    lr: float
    batch_size: int
    seed: int
    init_std: float
    num_train: int

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def recompute_forward(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def emit(self, kind: str, phase: Phase | None, text: Callable[[], str], detail: dict | None = None) -> None: ...

    def settings_from(self, values: dict[str, Any]) -> None: ...

    def set_function(self, name: str, fn: Callable, quiet: bool = False) -> None: ...
