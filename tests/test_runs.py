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
