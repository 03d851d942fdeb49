"""examples/01 runs top to bottom in a real kernel (nbclient), and says what it should."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import FASHION_ROOT, REPO

pytestmark = pytest.mark.kernel


def outputs_text(nb):
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebook_01_executes_and_teaches(tmp_path, monkeypatch):
    nb = nbformat.read(REPO / "examples" / "01_softmax_from_scratch.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed clean
    if FASHION_ROOT is not None:
        monkeypatch.setenv("SOFTMAX_WIDGETS_DATA", str(FASHION_ROOT))
    else:
        monkeypatch.setenv("SOFTMAX_WIDGETS_DATA", str(tmp_path))  # offline: the notebook falls back
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = outputs_text(nb)
    assert "PhaseError: sgd() needs gradients" in text
    assert "autograd equals Xᵀ(P − Y): True" in text
    assert "accumulated over 2 backward passes" in text
    assert text.count("epoch ") >= 3
    if FASHION_ROOT is not None and os.environ.get("SOFTMAX_WIDGETS_DATA"):
        assert "fashion-mnist" in text and "epoch 3, loss 0.5" in text
