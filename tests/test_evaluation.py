"""Confusion matrix, per-class accuracy and cell examples, with scikit-learn and torch as the oracles."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from softmax_widgets import Trainer
from softmax_widgets.evaluation import cell_examples, confusion_matrix, evaluate_test_set, per_class_accuracy


@pytest.fixture(scope="module")
def trained(digits):
    t = Trainer(digits, lr=0.5, batch_size=64, seed=0)
    for _ in range(15):
        t.train_step()
    return t


def predictions(t: Trainer) -> torch.Tensor:
    return torch.softmax(t.data.x_test @ t.W.detach() + t.b.detach(), dim=1).argmax(dim=1)


def test_confusion_matrix_matches_scikit_learn(trained):
    m = confusion_matrix(trained)
    expected = sk_confusion_matrix(trained.data.y_test.numpy(), predictions(trained).numpy(), labels=list(range(10)))
    assert m.shape == (10, 10) and m.dtype == torch.int64
    assert m.tolist() == expected.tolist()
    assert int(m.sum()) == len(trained.data.y_test)
    assert m.sum(dim=1).tolist() == torch.bincount(trained.data.y_test, minlength=10).tolist()  # rows are true


def test_accuracy_and_per_class_accuracy_agree_with_evaluate(trained):
    ev = evaluate_test_set(trained)
    assert ev.accuracy == pytest.approx(trained.evaluate())
    pca = per_class_accuracy(trained)
    y, pred = trained.data.y_test, predictions(trained)
    for c in range(10):
        assert float(pca[c]) == pytest.approx(float((pred[y == c] == c).float().mean()))
    assert ev.iteration == trained.iteration


def test_cell_examples_are_exactly_that_cell_most_confident_first(trained):
    ev = evaluate_test_set(trained)
    m = ev.confusion
    off = m.clone().fill_diagonal_(0)
    true, pred = divmod(int(off.argmax()), 10)  # the most common mistake
    cell = cell_examples(ev, true, pred, k=None)
    assert cell.count == int(m[true, pred]) == len(cell.indices) > 0
    y, p_all = trained.data.y_test, torch.softmax(trained.data.x_test @ trained.W.detach() + trained.b.detach(), 1)
    assert (y[cell.indices] == true).all() and (p_all[cell.indices].argmax(1) == pred).all()
    torch.testing.assert_close(cell.probs, p_all[cell.indices])
    assert torch.all(cell.p_predicted[:-1] >= cell.p_predicted[1:])
    assert torch.all(cell.p_predicted >= cell.p_true)
    few = cell_examples(trained, trained.data.classes[true], trained.data.classes[pred], k=2)
    assert few.indices.tolist() == cell.indices[:2].tolist() and few.count == cell.count


def test_an_empty_cell_and_bad_class_names(trained):
    cell = cell_examples(trained, 0, 0, k=0)
    assert len(cell.indices) == 0 and cell.probs.shape == (0, 10) and cell.count > 0
    with pytest.raises(ValueError, match="unknown class"):
        cell_examples(trained, "Sneaker", 1)
    with pytest.raises(ValueError, match="from 0 to 9"):
        cell_examples(trained, 10, 1)


def test_fashion_shirts_taken_for_t_shirts(fashion):
    t = Trainer(fashion, batch_size=256, seed=0)
    for _ in range(60):
        t.train_step()
    cell = cell_examples(t, "Shirt", "T-shirt/top", k=8)
    assert cell.count > 0 and len(cell.indices) == min(8, cell.count)
    assert (fashion.y_test[cell.indices] == fashion.classes.index("Shirt")).all()
    assert confusion_matrix(t).sum() == 10_000
