"""Faults at the kernel level, through a real ipykernel: interrupts, two views of one dashboard, close, re-create."""

from __future__ import annotations

import time

import pytest

from tests.kernel_client import click, run, start_kernel, value

jupyter_client = pytest.importorskip("jupyter_client")
pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

SETUP = """
import gc, json, weakref, torch
torch.set_num_threads(1)  # the kernel shares 2 cores with everything else: one BLAS thread is faster here
import ipywidgets
from ipywidgets.widgets.widget import _instances
from softmax_widgets import Trainer, load_dataset
from softmax_widgets.app import Dashboard

def consistent(t):
    h = t.history
    ok = len(h.loss) == len(h.train_acc) == len(h.batch_size) == t.iteration
    ok &= len(h.test_acc) == len(h.epoch_loss) == t.epoch
    return bool(ok and torch.isfinite(t.W).all() and torch.isfinite(t.b).all())

def state(d):
    t = d.trainer
    return dict(iteration=t.iteration, playing=d.is_playing, label=d.buttons['play'].description,
                status=d.status, consistent=consistent(t), listeners=t.listener_count,
                next_phase=t.next_phase.value)
"""


@pytest.fixture(scope="module")
def kernel():
    yield from start_kernel(SETUP)


def busy_with(kc, code: str) -> str:
    """Send `code` and return its msg_id once the kernel has started running it (iopub execute_input). It is
    sent with stop_on_error=False: it will be interrupted, and ipykernel would otherwise abort the requests that
    arrive just after its error (on a loaded machine, the next value() came back 'aborted')."""
    msg_id = kc.execute(code, stop_on_error=False)
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            return msg_id


def drain(kc, seconds: float) -> list[dict]:
    """iopub messages that arrive within `seconds` (what every open view of the notebook receives)."""
    msgs, end = [], time.time() + seconds
    while (left := end - time.time()) > 0:
        try:
            msgs.append(kc.get_iopub_msg(timeout=left))
        except Exception:  # queue.Empty
            break
    return msgs


def make(kc, name: str, on: str | None = None) -> dict:
    """A Dashboard `name` (on Trainer `on`, else a new one on digits); returns its buttons' model ids."""
    trainer = on or "Trainer(load_dataset('digits'), batch_size=64)"
    run(kc, f"{name} = Dashboard({trainer})")
    return value(kc, f"{{k: b.model_id for k, b in {name}.buttons.items()}}")


def test_interrupt_stops_play(kernel):
    km, kc = kernel
    ids = make(kc, "d1")
    click(kc, ids["play"])
    time.sleep(1.5)
    assert value(kc, "state(d1)")["playing"]
    time.sleep(0.3)  # let ipykernel finish that request (its post-handler hook) as a person's pause would
    km.interrupt_kernel()  # the notebook's ■ button
    time.sleep(1.0)
    after = value(kc, "state(d1)")
    run(kc, "d1.close()")  # stop it whatever happened: the other tests need a quiet kernel
    assert not after["playing"] and after["label"].endswith("Play") and after["consistent"]
    assert "interrupt" in after["status"]


def test_dashboard_usable_after_an_interrupt_during_play(kernel):
    km, kc = kernel
    ids = make(kc, "d2")
    click(kc, ids["play"])
    time.sleep(1.0)
    km.interrupt_kernel()
    time.sleep(0.5)
    s = value(kc, "state(d2)")
    assert s["consistent"], s
    assert not s["playing"] and "interrupt" in s["status"], s
    stopped = value(kc, "state(d2)")
    assert not stopped["playing"] and stopped["consistent"]
    click(kc, ids["iteration"])
    time.sleep(0.5)
    later = value(kc, "state(d2)")
    assert later["iteration"] == stopped["iteration"] + 1 and later["consistent"] and later["status"]
    run(kc, "d2.close()")


def test_interrupt_of_a_long_cell_keeps_the_trainer_consistent(kernel):
    """KeyboardInterrupt in t.fit(2000) lands somewhere inside a phase: the Trainer must still add up."""
    km, kc = kernel
    ids = make(kc, "d3")
    for delay in (0.3, 0.7, 1.1):  # three different points inside the loop
        msg_id = busy_with(kc, "d3.trainer.fit(2000)")
        time.sleep(delay)  # on a loaded machine the request itself can take longer than `delay` to start
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        s = value(kc, "state(d3)")
        assert s["consistent"] and not s["playing"], s
    click(kc, ids["iteration"])  # the buttons still work afterwards
    after = value(kc, "state(d3)")
    deadline = time.monotonic() + 15  # a machine busy with other work handles the click later, not never
    while after["iteration"] <= s["iteration"] and time.monotonic() < deadline:
        time.sleep(0.25)
        after = value(kc, "state(d3)")
    assert after["iteration"] > s["iteration"] and after["consistent"]
    run(kc, "d3.close()")


def test_two_views_of_one_dashboard_stay_in_sync(kernel):
    _, kc = kernel
    ids = make(kc, "d4")
    views = []
    for _ in range(2):  # `d4` as the value of two cells
        _, msgs = run(kc, "d4")
        views += [m["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
                  for m in msgs if m["msg_type"] == "execute_result"]
    model = value(kc, "d4.model_id")
    assert views == [model, model]  # two views of one model: the front end keeps them identical
    status_id = value(kc, "d4.controls.status_html.model_id")
    drain(kc, 0.2)
    click(kc, ids["next_batch"])
    msgs = drain(kc, 1.0)
    updated = {m["content"]["comm_id"] for m in msgs if m["msg_type"] == "comm_msg"
               and m["content"]["data"].get("method") == "update"}
    assert status_id in updated  # one update message, which every view of that model applies
    assert value(kc, "d4.status").startswith("next_batch")


def test_close_removes_listeners_and_widgets_and_recreate_works(kernel):
    _, kc = kernel
    run(kc, "t5 = Trainer(load_dataset('digits'), batch_size=64); n0 = t5.listener_count; w0 = len(_instances)")
    make(kc, "d5", on="t5")
    run(kc, "display(d5)")  # shown (display(), not the cell value: Out[] would keep it alive)
    # the dashboard's, its views' (tabs) and the graph tab's (its formula line is drawn by the dashboard's own
    # push, beside the code line)
    assert value(kc, "t5.listener_count - n0") == 3
    run(kc, "d5.close(); ref = weakref.ref(d5); del d5; gc.collect()")
    assert value(kc, "t5.listener_count") == value(kc, "n0")  # no listener left on the Trainer
    assert value(kc, "ref() is None")  # nothing keeps the closed dashboard alive
    # a new dashboard on the same Trainer, after some training from code
    run(kc, "t5.fit(1)")
    ids = make(kc, "d6", on="t5")
    # the dashboard's, its views' (tabs) and the graph tab's
    assert value(kc, "t5.listener_count - n0") == 3
    before = value(kc, "state(d6)")
    click(kc, ids["iteration"])
    time.sleep(0.5)
    after = value(kc, "state(d6)")
    assert after["iteration"] == before["iteration"] + 1 and after["status"].startswith("sgd")
    assert value(kc, "float(d6.plots.loss_line.x[-1])") == after["iteration"]
    run(kc, "d6.close()")
    assert value(kc, "t5.listener_count") == value(kc, "n0")


def test_close_leaves_no_widget_open(kernel):
    _, kc = kernel
    run(kc, "w0 = len(_instances); d7 = Dashboard(Trainer(load_dataset('digits'))); display(d7); d7.close()")
    left = value(kc, "[type(w).__name__ for k, w in list(_instances.items())[w0:]]")
    assert left == [], f"close() left {left} open in the kernel"


# ---- the same interrupts, placed exactly: KeyboardInterrupt raised inside a phase, in-process ----
def _trainers():
    from softmax_widgets import Trainer, load_dataset

    data = load_dataset("digits")
    return Trainer(data, batch_size=64, seed=0), Trainer(data, batch_size=64, seed=0)


def test_interrupt_inside_sgd_puts_everything_back():
    import torch

    from softmax_widgets import model

    t, ref = _trainers()
    for x in (t, ref):
        x.train_step()
        x.next_batch().forward().zero_grad().backward()

    def interrupted(params, lr, batch_size):
        model.sgd(params, lr, batch_size)  # W has moved...
        raise KeyboardInterrupt  # ...when the ■ button's SIGINT lands

    t.optimizer = interrupted
    with pytest.raises(KeyboardInterrupt):
        t.sgd()
    assert torch.equal(t.W, ref.W) and t.iteration == ref.iteration == 1 and len(t.history.loss) == 1
    assert t.next_phase.value == "sgd"  # the iteration simply did not happen: sgd() again finishes it
    t.optimizer = model.sgd
    for x in (t, ref):
        x.sgd()
        x.train_step()
    assert torch.equal(t.W, ref.W) and t.history.loss == ref.history.loss


def test_interrupt_inside_backward_never_wedges():
    import torch

    t, ref = _trainers()
    t.next_batch().forward().zero_grad()

    def hook(grad):
        raise KeyboardInterrupt

    handle = t.W.register_hook(hook)
    with pytest.raises(KeyboardInterrupt):
        t.backward()
    handle.remove()
    assert t.next_phase.value == "forward" and t.grad_passes == 0  # not "backward" on a freed graph
    assert float(t.W.grad.abs().sum()) == 0.0
    t.train_step()
    ref.train_step()
    assert torch.equal(t.W, ref.W) and t.history.loss == ref.history.loss  # as if never interrupted
