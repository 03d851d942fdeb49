"""Shared fixtures: the real Fashion-MNIST where it is ($SOFTMAX_WIDGETS_DATA, else ../shared/data), digits always."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from softmax_widgets import load_dataset

REPO = Path(__file__).resolve().parents[1]


def fashion_root() -> Path | None:
    """The folder holding FashionMNIST/raw: $SOFTMAX_WIDGETS_DATA when set, else ../shared/data.

    A set variable is the only place looked at: `SOFTMAX_WIDGETS_DATA=$(mktemp -d) make test` runs the
    suite as a fresh clone with no data would, even on a machine that has ../shared/data.
    """
    env = os.environ.get("SOFTMAX_WIDGETS_DATA")
    cand = Path(env).expanduser() if env else REPO.parent / "shared" / "data"
    return cand if (cand / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").exists() else None


FASHION_ROOT = fashion_root()
NO_FASHION = ("the real Fashion-MNIST is not here: set SOFTMAX_WIDGETS_DATA to the folder holding FashionMNIST/raw "
              f"(looked in {os.environ.get('SOFTMAX_WIDGETS_DATA') or REPO.parent / 'shared' / 'data'})")
needs_fashion = pytest.mark.skipif(FASHION_ROOT is None, reason=NO_FASHION)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def fashion():
    if FASHION_ROOT is None:
        pytest.skip(NO_FASHION)
    return load_dataset("fashion-mnist", root=FASHION_ROOT, download=False)


async def wait_until(cond, timeout: float = 30.0) -> None:
    """Let the running loop work (Play is a task on it) until cond() holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)
