"""Running the dashboard's cell again never loses the run it showed: kept one ↶ undo away, dashed, reachable."""

from __future__ import annotations

import time

import pytest
import torch

from softmax_widgets import Phase, Trainer, load_dataset
from softmax_widgets.app import Dashboard
from softmax_widgets.ui import rerun

from .kernel_client import click, run, start_kernel, value


@pytest.fixture
def displayed(digits):
    """A dashboard a front end shows (ipywidgets' view count above 0), three iterations and a batch in."""
    made = []

    def make(scale=1.0, data=digits):
        d = Dashboard(Trainer(data, batch_size=64, seed=0), scale=scale)
        made.append(d)
        return d

    old = make(scale=1.5)
    old._view_count = 1
    for _ in range(3):
        old.trainer.train_step()
    old.trainer.next_batch()
    yield old, make
    for d in made:
        d.close()
    assert rerun._newest is None or rerun._newest() is None


def test_running_the_dashboard_cell_again_keeps_the_run_one_undo_away(displayed):
    old, make = displayed
    W, history = old.trainer.W.detach().clone(), old.trainer.history.copy()
    new = make(scale=None)  # the cell's own call, run again (it passes no scale)
    assert new.previous is old.trainer and new.scale == 1.5  # A+ stays on
    assert new.status == ("This cell ran again: the run it showed (epoch 1, iteration 3) is kept — ↶ undo brings it "
                          "back, its loss stays dashed on the plot, dash.previous is its Trainer.")
    assert [r.iteration for r in new.views.runs] == [3] and len(new.plots.run_lines) == 1
    t = new.trainer
    assert t.iteration == 0
    new.buttons["undo"].click()
    assert t.iteration == 3 and torch.equal(t.W, W) and t.history == history and t.next_phase is Phase.FORWARD
    assert new.status.startswith("undo: back to before the dashboard cell ran again")
    old.trainer.train_step()
    t.train_step()  # it goes on exactly as the old run does
    assert torch.equal(t.W, old.trainer.W) and t.history.loss == old.trainer.history.loss


def test_a_dashboard_on_other_data_keeps_the_old_run_as_a_kept_run_only(displayed):
    old, make = displayed
    new = make(data=load_dataset("fashion-mnist-small"))
    assert new.previous is old.trainer and len(new.trainer.snapshots) == 0  # no undo onto other images
    assert "↶ undo" not in new.status and "its loss stays dashed on the plot" in new.status


def test_dashboards_never_displayed_take_nothing_over(digits):
    a = Dashboard(Trainer(digits, batch_size=64))
    a.trainer.train_step()
    b = Dashboard(Trainer(digits, batch_size=64))
    assert b.previous is None and len(b.views.runs) == 0 and not b.status.startswith("This cell ran again")
    a.close()
    b.close()


SETUP = """
import torch
torch.set_num_threads(1)
from softmax_widgets import Trainer, load_dataset
from softmax_widgets.app import Dashboard
dash = Dashboard(Trainer(load_dataset("digits"), batch_size=64))
"""


def _views(kc, model_id: str, count: int) -> None:
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": {
        "method": "update", "state": {"_view_count": count}, "buffer_paths": []}}))


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_re_running_the_cell_during_play_in_a_real_kernel_keeps_the_run():
    for _, kc in start_kernel():
        run(kc, SETUP)
        _views(kc, value(kc, "dash.model_id"), 1)  # the front end displays it
        click(kc, value(kc, "dash.buttons['play'].model_id"))
        deadline = time.time() + 60
        while value(kc, "dash.trainer.iteration") < 20 and time.time() < deadline:
            time.sleep(0.2)
        run(kc, "old = dash\n" + SETUP)  # the cell again, during Play
        time.sleep(0.5)
        state = value(kc, "dict(old_playing=old.is_playing, it=old.trainer.iteration, same=dash.previous is "
                          "old.trainer, status=dash.status, kept=[r.iteration for r in dash.views.runs])")
        assert not state["old_playing"] and state["same"] and state["it"] >= 20, state
        assert state["status"].startswith("This cell ran again: the run it showed") and state["kept"], state
        click(kc, value(kc, "dash.buttons['undo'].model_id"))
        time.sleep(0.5)
        assert value(kc, "dash.trainer.iteration") == value(kc, "old.trainer.iteration")
