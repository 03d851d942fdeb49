"""The shipped notebooks: committed clean, and 03 (live coding) runs top to bottom in a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import FASHION_ROOT

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = [*sorted((REPO / "examples").glob("*.ipynb")), REPO / "softmax_widgets" / "dashboard_app.ipynb"]
# what JupyterLab writes for ipykernel's kernel: a notebook opened in Lab is then not marked modified at once
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean_with_a_kernelspec(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    # without a kernelspec JupyterLab asks which kernel to use before the first cell runs
    # the Voila page is never opened in Lab: its older display name changes nothing
    expected = dict(KERNELSPEC, display_name="Python 3") if path.name == "dashboard_app.ipynb" else KERNELSPEC
    assert nb.metadata.get("kernelspec") == expected
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: clear them"


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


@pytest.mark.kernel
@pytest.mark.timeout(600)
def test_live_coding_notebook_runs_and_shows_each_mistake(tmp_path, monkeypatch):
    nb = nbformat.read(REPO / "examples" / "03_instructor_live_coding.ipynb", as_version=4)
    if FASHION_ROOT is not None:  # the real data where it exists; else the notebook's own digits fallback
        monkeypatch.setenv("SOFTMAX_WIDGETS_DATA", str(FASHION_ROOT))
    # the kernel inherits this process's environment
    NotebookClient(nb, timeout=300, startup_timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    text = "\n".join(_stream_text(c) for c in code)
    # the dashboard itself is the first cell's value: a widget view, not a text repr
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in code[0].outputs)
    if FASHION_ROOT is not None:
        assert "training on Dataset('fashion-mnist'" in text
    assert "same as torch.softmax: True" in text
    # the kit's checks before each swap: the students' functions pass every case; a classic bug is caught, with a hint
    for line in ("check_softmax(my_softmax):", "check_cross_entropy(my_cross_entropy):"):
        assert next(ln for ln in text.splitlines() if ln.startswith(line)).endswith("checks passed — well done!")
    assert "check_softmax(softmax_without_keepdim):" in text and "keepdim=True" in text and "passed: False" in text
    assert "after 100 iterations" in text
    # skipping zero_grad: the Trainer's warning event, with a growing count of summed backward passes
    assert "accumulated over 2 backward passes because zero_grad() was skipped" in text
    assert "W.grad held 4 batches' gradients" in text
    # lr 10: a DivergenceError that the cell caught and printed, with the way out
    assert "DivergenceError at iteration" in text and "lower the learning rate" in text
    # the lesson's softmax on logits shifted by 100 overflows; the stable one does not
    assert "lesson softmax: tensor([[nan, nan, nan]])" in text
    assert "exp() overflowed" in text and "above 88.7" in text and "b was changed outside the phases" in text
    loss_line = next(ln for ln in text.splitlines() if ln.startswith("forward with the stable softmax"))
    assert float(loss_line.split("loss ")[1].split()[0]) < 5
    # Run All leaves no trap: the +100 is taken out again and the lesson's functions are back for "Your turn"
    b_line = next(ln for ln in text.splitlines() if ln.startswith("largest |b|"))
    assert float(b_line.split()[2].rstrip(";")) < 1 and b_line.endswith("softmax: softmax")
