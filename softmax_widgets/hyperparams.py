"""The checks every hyper-parameter passes, whether typed in a cell, dragged on a slider or read from a file."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = ["check_batch_size", "check_device", "check_init_std", "check_lr", "check_seed"]


def finite(x: Real) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float, such as 10**400
        return False


def check_lr(lr) -> None:
    if isinstance(lr, bool) or not isinstance(lr, Real) or not finite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a finite number > 0 (the lesson uses 0.1), got {lr!r:.40}")


def check_batch_size(bs, n: int) -> None:
    """`n`: the number of training images, the largest batch there can be."""
    if isinstance(bs, bool) or not isinstance(bs, Integral):
        raise ValueError(f"batch size must be a whole number from 1 to {n} (the lesson uses 256), got {bs!r:.40}")
    if not 1 <= bs <= n:
        raise ValueError(f"batch size must be between 1 and {n}, the number of training images; got {bs!r:.40}")


def check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r:.40}")


def check_init_std(init_std) -> None:
    if isinstance(init_std, bool) or not (isinstance(init_std, Real) and finite(init_std) and init_std >= 0):
        raise ValueError(f"init_std must be a finite number >= 0 (the lesson uses 0.01), got {init_std!r:.40}")


def check_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available here (torch.cuda.is_available() is False): "
                         "use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: use 'cpu' or 'cuda'")
    return dev
