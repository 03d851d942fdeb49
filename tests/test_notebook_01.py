"""examples/01 runs top to bottom in a real kernel (nbclient), and shows what it should: data, code, W."""

import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import FASHION_ROOT, REPO

pytestmark = pytest.mark.kernel

NOTEBOOK = REPO / "examples" / "01_softmax_from_scratch.ipynb"


def outputs_text(nb):
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def images(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]


def test_notebook_01_is_import_only_and_links_on():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"^\s*(def|class) \w+", code, re.M)  # the package's code, never a copy of it
    assert "inspect.getsource" in code
    last = nb.cells[-1]
    assert last.cell_type == "markdown"
    assert "(02_dashboard.ipynb)" in last.source and "(03_instructor_live_coding.ipynb)" in last.source
    for name in ("02_dashboard.ipynb", "03_instructor_live_coding.ipynb"):
        assert (REPO / "examples" / name).exists()


@pytest.mark.parametrize("data", ["real", "offline"])
def test_notebook_01_executes_and_teaches(tmp_path, monkeypatch, data):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed clean
    if data == "real":
        if FASHION_ROOT is None:
            pytest.skip("the real Fashion-MNIST is not here: set SOFTMAX_WIDGETS_DATA")
        monkeypatch.setenv("SOFTMAX_WIDGETS_DATA", str(FASHION_ROOT))
    else:  # an empty data folder and no network (every request to a closed port): the bundled subset
        monkeypatch.setenv("SOFTMAX_WIDGETS_DATA", str(tmp_path))
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = outputs_text(nb)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    # the lesson's own functions, printed from the package
    for line in ("def softmax(X", "def cross_entropy(y_hat", "def sgd(params",
                 "param.data -= lr * param.grad / batch_size"):
        assert line in text
    # the data grid and W twice (after 20 iterations, after 3 epochs), as images
    assert len(images(nb)) == 3
    assert "W after 20 iterations" in text and "W after 3 epochs" in text
    assert "PhaseError: sgd() needs gradients" in text
    assert "autograd equals Xᵀ(P − Y): True" in text
    # the graph after forward (its node names) and after backward (freed, so a second backward is refused)
    for node in ("AccumulateGrad", "AddmmBackward0", "ExpBackward0", "DivBackward0", "LogBackward0", "SumBackward0"):
        assert node in text
    assert "saved tensors freed: True" in text and "PhaseError: backward() already ran on this forward pass" in text
    assert "accumulated over 2 backward passes" in text
    assert text.count("epoch ") >= 3
    if data == "real":
        assert "fashion-mnist" in text and "epoch 3, loss 0.5" in text and "NOTE:" not in text
    else:
        note = next(line for line in text.splitlines() if line.startswith("NOTE:"))
        assert "bundled offline subset" in note and "SOFTMAX_WIDGETS_DATA" in note and "root=" in note
        assert "--" not in note  # the notebook's language, not a command-line flag
        assert "Dataset('fashion-mnist-small'" in text


def test_a_download_in_a_notebook_shows_a_progress_widget(tmp_path):
    """tqdm.auto: in a kernel the download's bar is a widget, not lines of text on stderr."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from softmax_widgets import _download\n"
        "bar = _download._progress(1000, 'train-images-idx3-ubyte.gz')\nbar.update(1000)\nbar.close()")])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    assert not [o for o in outputs if o.output_type in ("error", "stream") and o.get("name") == "stderr"]
