"""Play and Pause through a real ipykernel: clicks arrive as the comm messages a browser sends."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import REPO
from .kernel_client import click, run, start_kernel, value

jupyter_client = pytest.importorskip("jupyter_client")
pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

SETUP = """
import json, torch
torch.set_num_threads(1)  # the kernel shares 2 cores with the browser: one BLAS thread is faster here
from softmax_widgets import Trainer, load_dataset
from softmax_widgets.app import Dashboard
dash = Dashboard(Trainer(load_dataset("digits"), batch_size=64))
"""
PROBE = ("dict(iteration=dash.trainer.iteration, playing=dash.is_playing, label=dash.buttons['play'].description, "
         "pause=dash.pause_time, last=dash.last_step_time, status=dash.status)")


@pytest.fixture(scope="module")
def kernel():
    for _, kc in start_kernel():
        yield kc


def probe(kc) -> dict:
    return value(kc, PROBE)


def setup(kc) -> dict:
    """A fresh dashboard in the kernel; its buttons' comm ids."""
    run(kc, SETUP)
    return value(kc, "{k: b.model_id for k, b in dash.buttons.items()}")


def test_play_and_pause_by_comm_messages(kernel):
    ids = setup(kernel)
    assert set(ids) >= {"next_batch", "forward", "zero_grad", "backward", "sgd", "play", "reset"}
    assert probe(kernel)["iteration"] == 0

    click(kernel, ids["play"])
    time.sleep(1.5)
    playing = probe(kernel)  # an execute_request answered while Play runs: the kernel is not blocked
    assert playing["playing"] and playing["iteration"] > 0 and playing["label"] == "‖ Pause"
    time.sleep(0.5)
    assert probe(kernel)["iteration"] > playing["iteration"]  # still moving

    sent = time.time()
    click(kernel, ids["play"])  # the same button now reads Pause
    time.sleep(1.0)
    paused = probe(kernel)
    assert not paused["playing"] and paused["label"] == "▶ Play"
    assert paused["pause"] - sent < 0.2, f"the Pause click was handled {paused['pause'] - sent:.3f} s after it left"
    assert paused["last"] - sent < 0.2, f"a step ran {paused['last'] - sent:.3f} s after Pause was sent"
    time.sleep(0.5)
    assert probe(kernel)["iteration"] == paused["iteration"]  # stopped, and stays stopped


def test_phase_buttons_by_comm_messages_and_errors_in_words(kernel):
    ids = setup(kernel)
    click(kernel, ids["sgd"])  # out of order: the status explains, nothing moves
    time.sleep(0.3)
    state = probe(kernel)
    assert state["iteration"] == 0 and "backward" in state["status"]
    for name in ["next_batch", "forward", "zero_grad", "backward", "sgd"]:
        click(kernel, ids[name])
    time.sleep(0.5)
    state = probe(kernel)
    assert state["iteration"] == 1 and state["status"].startswith("sgd")
    # driven from code, not buttons: the dashboard catches up by itself once the cell is done
    run(kernel, "for _ in range(40): dash.trainer.train_step()")
    time.sleep(0.5)
    shown = value(kernel, "[int(dash.plots.loss_line.x[-1]), dash.trainer.iteration]")
    assert shown == [41, 41], shown


NOTEBOOK = REPO / "examples" / "02_dashboard.ipynb"


def test_dashboard_notebook_is_committed_clean():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"] == {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                            "language": "python"}  # what Lab writes: opening changes nothing
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_dashboard_notebook_runs_in_a_kernel(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from .conftest import FASHION_ROOT

    if FASHION_ROOT is not None:  # else the notebook downloads Fashion-MNIST, or falls back to digits
        monkeypatch.setenv("SOFTMAX_WIDGETS_DATA", str(FASHION_ROOT))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = [o for o in code[0].outputs if o.output_type == "execute_result"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]  # the dashboard itself
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in code[1].outputs)
    assert "Trainer(" in text and "iteration 0" in text  # Run all leaves the lesson at its start


def views(kc, model_id: str, count: int) -> None:
    """What the front end sends when a view of the widget is displayed or removed (ipywidgets' _view_count)."""
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": {
        "method": "update", "state": {"_view_count": count}, "buffer_paths": []}}))


def test_play_stops_when_the_last_view_goes(kernel):
    """Issue 13: re-running the dashboard's cell (or clearing its output) during Play left an invisible run going."""
    ids = setup(kernel)
    dash_id = value(kernel, "dash.model_id")
    views(kernel, dash_id, 1)  # displayed
    click(kernel, ids["play"])
    time.sleep(1.0)
    assert probe(kernel)["playing"]
    views(kernel, dash_id, 2)  # a second view (Create New View for Output): still shown
    time.sleep(0.3)
    assert probe(kernel)["playing"]
    views(kernel, dash_id, 1)
    views(kernel, dash_id, 0)  # the output cleared: no view left
    gone = time.time()
    time.sleep(1.0)
    after = probe(kernel)
    assert not after["playing"] and after["pause"] - gone < 1.0, after
    assert "no longer on the page" in value(kernel, "dash.controls.status_html.value")
    assert value(kernel, "dash._view_count") == 0
