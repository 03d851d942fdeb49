"""Kept runs: copies that do not move with the trainer, unique labels, removal, listeners."""

from __future__ import annotations

import pytest

from softmax_widgets import Trainer
from softmax_widgets.runs import RunStore


def test_runs_keep_a_copy_of_history_and_settings(digits):
    store = RunStore()
    t = Trainer(digits, lr=0.01, batch_size=64, seed=1)
    for _ in range(5):
        t.train_step()
    slow = store.add(t)
    assert slow.label == "lr 0.01, batch 64, seed 1, softmax" and slow.status == "paused"
    assert (slow.lr, slow.batch_size, slow.seed, slow.dataset, slow.iteration) == (0.01, 64, 1, "digits", 5)
    loss = list(slow.history.loss)
    t.lr = 1.0
    t.use_stable_softmax()
    t.train_step()
    t.undo(iterations=2)  # the trainer's history shrinks and grows; the kept copy must not
    assert slow.history.loss == loss and len(slow.history.loss) == 5
    fast = store.add(t, status="finished")
    assert fast.label == "lr 1, batch 64, seed 1, stable_softmax" and fast.iteration == 4
    assert store.labels == [slow.label, fast.label] and len(store) == 2


def test_whole_epochs_give_test_accuracy_points(digits):
    store = RunStore()
    t = Trainer(digits, lr=0.1, batch_size=500, seed=0)
    t.fit(2)
    run = store.add(t, label="two epochs", status="finished")
    assert [i for i, _ in run.test_acc_points] == t.history.epoch_iteration == [3, 6]
    # numbered as the counter and the views number epochs (it said "finished: epoch 3" after two)
    assert str(run).startswith("two epochs (after epoch 2 (iteration 6), epoch loss ") and "two epochs" in repr(store)


def test_a_kept_run_quotes_the_epochs_own_loss_not_the_last_batchs(digits):
    """The kept list said "loss 1.0296" (the last batch) where the epoch's status had said 1.3940 (its mean)."""
    store = RunStore()
    t = Trainer(digits, lr=0.1, batch_size=64, seed=0)
    t.run_epoch()
    words = str(store.add(t))
    assert f"epoch loss {t.history.epoch_loss[-1]:.4f}, test acc {t.history.test_acc[-1]:.3f}" in words
    assert t.history.epoch_loss[-1] != t.history.loss[-1]
    t.train_step()
    assert str(store.add(t)).endswith(f"last batch's loss {t.history.loss[-1]:.4f})")


def test_labels_are_unique_and_runs_can_be_removed(digits):
    store = RunStore()
    seen = []
    store.on_change(lambda s: seen.append(len(s)))
    t = Trainer(digits)
    a, b, c = store.add(t, "base"), store.add(t, "base"), store.add(t, "base")
    assert [a.label, b.label, c.label] == ["base", "base (2)", "base (3)"]
    assert store.remove("base (2)") is b and b not in list(store)
    assert store.remove(c.id) is c and store.remove(a) is a and len(store) == 0
    assert seen == [1, 2, 3, 2, 1, 0]
    with pytest.raises(KeyError, match="none kept yet"):
        store.remove("base")
    with pytest.raises(ValueError):
        store.add(t, status="running")


def concise(data, seed: int = 0) -> Trainer:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return Trainer(data, batch_size=64, model=nn.Sequential(nn.Flatten(), nn.Linear(64, 10)),
                   loss_fn=nn.CrossEntropyLoss(reduction="none"), optimizer=torch.optim.SGD)


def test_a_from_scratch_run_and_a_concise_one_are_told_apart(digits):
    """Kept side by side, the lesson's run and a torch.nn run were both "lr 0.1, batch 64, seed 0, softmax": the
    concise run never calls the lesson's softmax. Each run now names its model."""
    from softmax_widgets.models import MLP

    store = RunStore()
    scratch, nn_run, mlp = Trainer(digits, batch_size=64, seed=0), concise(digits), Trainer(
        digits, batch_size=64, seed=0, model=MLP(hidden=8))
    for t in (scratch, nn_run, mlp):
        t.fit(1)
    a, b, c = store.add(scratch), store.add(nn_run), store.add(mlp)
    assert a.label == "lr 0.1, batch 64, seed 0, softmax" and a.model == "the lesson's softmax regression"
    assert b.label == "Sequential module, lr 0.1, batch 64, seed 0" and b.model == "Sequential module"
    assert b.softmax == "" and c.label == "MLP(hidden=8), lr 0.1, batch 64, seed 0" and c.model == "MLP(hidden=8)"
    mlp.relu = lambda X: X.clamp(min=0)
    assert store.add(mlp).label == "MLP(hidden=8), <lambda>, lr 0.1, batch 64, seed 0"
    assert b.test_acc_points == list(zip(nn_run.history.epoch_iteration, nn_run.history.test_acc, strict=True))


def test_the_compare_pane_sets_a_from_scratch_run_beside_a_concise_dashboard(digits):
    """05_concise's last step: the concise dashboard's compare runs tab with the from-scratch run kept beside it."""
    from softmax_widgets.app import Dashboard

    scratch, nn_run = Trainer(digits, batch_size=64, seed=0), concise(digits)
    scratch.fit(2)
    dash = Dashboard(nn_run)
    try:
        cmp = dash.views.compare
        assert cmp.keep_run(Trainer(digits)) is None and "nothing to keep yet" in cmp.status.value
        cmp.label.value = "typed for the live run"
        kept = cmp.keep_run(scratch, "from scratch")
        assert kept.label == "from scratch" and kept.model == "the lesson's softmax regression"
        assert cmp.label.value == "typed for the live run"  # the box is for this dashboard's own run
        nn_run.fit(2)
        cmp.label.value = ""
        dash.keep.click()  # the dashboard's own keep button: the concise run, named by its model
        assert cmp.labels() == ["from scratch", "Sequential module, lr 0.1, batch 64",
                                "live: Sequential module, lr 0.1, batch 64"]
        dash.views.select("compare runs")
        runs = list(dash.views.runs)
        for run in runs:  # both runs' test accuracy, epoch by epoch, on one iteration axis
            assert list(cmp.lines[run.id][1].x) == run.history.epoch_iteration == [23, 46]
            assert list(cmp.lines[run.id][1].y) == pytest.approx(run.history.test_acc)
        assert runs[0].history.test_acc == scratch.history.test_acc != runs[1].history.test_acc
    finally:
        dash.close()
