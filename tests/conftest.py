"""Shared fixtures: the real Fashion-MNIST from ../shared/data where it exists, digits always."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from softmax_widgets import load_dataset

REPO = Path(__file__).resolve().parents[1]


def fashion_root() -> Path | None:
    """The folder holding FashionMNIST/raw: $SOFTMAX_WIDGETS_DATA, else ../shared/data."""
    for cand in (os.environ.get("SOFTMAX_WIDGETS_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
            return Path(cand)
    return None


FASHION_ROOT = fashion_root()
needs_fashion = pytest.mark.skipif(
    FASHION_ROOT is None, reason="real Fashion-MNIST not found: set SOFTMAX_WIDGETS_DATA or provide ../shared/data"
)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def fashion():
    if FASHION_ROOT is None:
        pytest.skip("real Fashion-MNIST not found: set SOFTMAX_WIDGETS_DATA or provide ../shared/data")
    return load_dataset("fashion-mnist", root=FASHION_ROOT, download=False)


async def wait_until(cond, timeout: float = 30.0) -> None:
    """Let the running loop work (Play is a task on it) until cond() holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)
