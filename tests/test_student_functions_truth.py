"""What the status says about a student's own function is what that function did (issue 18)."""
import pytest
import torch

from softmax_widgets import Trainer, load_dataset, model
from softmax_widgets.trainer import CustomFunctionError


@pytest.fixture(scope="module")
def small():
    return load_dataset("fashion-mnist-small")


def test_an_sgd_without_no_grad_is_told_to_use_no_grad_and_changes_nothing(small):
    def my_sgd(params, lr, batch_size):
        for p in params:
            p -= lr * p.grad / batch_size

    t = Trainer(small, seed=0)
    t.optimizer = my_sgd
    for phase in (t.next_batch, t.forward, t.zero_grad, t.backward):
        phase()
    W, b, it = t.W.detach().clone(), t.b.detach().clone(), t.iteration
    with pytest.raises(CustomFunctionError) as err:
        t.sgd()
    # measured: the weights and the loop are where they were, so the fixed sgd can simply run again
    assert torch.equal(t.W, W) and torch.equal(t.b, b) and t.iteration == it and t.next_phase == "sgd"
    text = str(err.value)
    assert "torch.no_grad()" in text and "p.data" in text and "line 3" in text
    assert "operation. on line" not in text  # torch's sentence is not glued to ours
    t.optimizer = lambda params, lr, bs: [p.data.sub_(lr * p.grad / bs) for p in params]
    t.sgd()
    assert not torch.equal(t.W, W) and t.iteration == it + 1


def _to_sgd(t):
    for phase in (t.next_batch, t.forward, t.zero_grad, t.backward):
        phase()


def test_an_sgd_that_rebinds_p_is_told_it_left_w_unchanged_and_nothing_is_recorded(small):
    def rebinding_sgd(params, lr, batch_size):
        with torch.no_grad():
            for p in params:
                p = p - lr * p.grad / batch_size  # a new tensor named p: W itself never moves

    t = Trainer(small, seed=0)
    t.optimizer = rebinding_sgd
    _to_sgd(t)
    W, it, losses = t.W.detach().clone(), t.iteration, len(t.history.loss)
    with pytest.raises(CustomFunctionError) as err:
        t.sgd()
    # measured: W did not move, so no iteration is recorded and sgd is still the next phase
    assert torch.equal(t.W, W) and t.iteration == it and len(t.history.loss) == losses and t.next_phase == "sgd"
    text = str(err.value)
    assert "unchanged" in text and "in place" in text and "changed in place" not in text


def test_an_sgd_without_batch_size_is_measured_as_b_times_the_lessons_step_not_blamed_on_the_lr(small):
    def sgd_no_batch(params, lr, batch_size):
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad

    t = Trainer(small, seed=0)
    t.optimizer = sgd_no_batch
    events = []
    t.on_change(lambda tr, e: events.append(e))
    _to_sgd(t)
    t.sgd()
    B = t.history.batch_size[-1]
    assert t.last_step is not None and abs(t.last_step.ratio - B) < 0.01 * B  # measured, not assumed
    done = [e for e in events if e.kind == "phase" and e.phase == "sgd"][-1]
    assert "W.grad / 256" not in done.message and f"{B}" in done.message  # the lesson's formula is not claimed
    warn = [e for e in events if e.kind == "warning" and e.phase == "sgd"]
    assert warn and "batch_size" in warn[-1].message
    # trained on, it blows up: the divergence names the optimizer's step, not the learning rate
    from softmax_widgets import DivergenceError
    with pytest.raises(DivergenceError) as err:
        for _ in range(500):
            t.train_step()
    assert t.lr == 0.1
    div = [e for e in events if e.kind == "divergence"][-1]
    codes = [w["code"] for w in div.detail["ways"]]
    assert "lower_lr" not in codes and "stable_softmax" not in codes
    assert "batch_size" in str(err.value) and "lower the learning rate" not in str(err.value)
    # the first way out works: its steps taken back (W as before them) and the lesson's sgd back, training goes on
    way = div.detail["ways"][0]
    assert way["lesson"] == "sgd" and way["steps"] == t.wild_steps
    t.undo(**way["undo"])
    t.use_lesson(way["lesson"])
    assert float(t.W.detach().abs().max()) < 0.1 and t.iteration == 0 and t.wild_steps == 0
    for _ in range(20):
        t.train_step()
    assert t.history.loss[-1] < t.history.loss[0]


def test_a_cross_entropy_returning_the_mean_is_refused_as_a_mean_and_forward_can_run_again(small):
    def mean_cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y]).mean()

    t = Trainer(small, seed=0)
    t.loss_fn = mean_cross_entropy
    t.next_batch()
    with pytest.raises(CustomFunctionError) as err:
        t.forward()
    assert t.next_phase == "forward" and t.loss is None  # nothing recorded from the mean
    text = str(err.value)
    assert "mean" in text and "256" in text
    # the sum of the per-image losses as one number is the lesson's loss: accepted, with the lesson's value
    t.loss_fn = lambda y_hat, y: -torch.log(y_hat[range(len(y_hat)), y]).sum()
    t.forward()
    ref = -torch.log(t.y_hat[range(len(t.y)), t.y]).sum().item()
    assert t.loss_value == pytest.approx(ref, rel=1e-5)


def test_a_softmax_without_keepdim_is_told_to_keep_the_summed_dimension(small):
    def softmax_without_keepdim(X):
        X_exp = torch.exp(X)
        return X_exp / X_exp.sum(dim=1)

    t = Trainer(small, seed=0)
    t.softmax = softmax_without_keepdim
    t.next_batch()
    with pytest.raises(CustomFunctionError) as err:
        t.forward()
    assert t.next_phase == "forward" and "keepdim=True" in str(err.value)


def test_a_square_batch_softmax_without_keepdim_is_caught_by_its_row_sums(small):
    def softmax_without_keepdim(X):
        X_exp = torch.exp(X)
        return X_exp / X_exp.sum(dim=1)  # (10, 10) / (10,): broadcasts the wrong way, no error

    t = Trainer(small, seed=0, batch_size=10)
    t.softmax = softmax_without_keepdim
    events = []
    t.on_change(lambda tr, e: events.append(e))
    t.next_batch().forward()  # kept (the graph shows the broadcast), and said: measured row sums
    sums = t.y_hat.detach().sum(dim=1)
    assert float((sums - 1).abs().max()) > 1e-3
    warn = [e for e in events if e.kind == "warning" and e.phase == "forward"]
    assert warn and "keepdim=True" in warn[-1].message and "sum to 1" in warn[-1].message
    t.softmax = model.softmax
    events.clear()
    t.forward()  # the same batch again
    assert not [e for e in events if e.kind == "warning"]  # the lesson's softmax: nothing to say


def test_the_b_plus_100_overflow_is_blamed_on_the_hand_change_in_two_short_sentences(small):
    """Notebook 03's own cell: after a reset, `b += 100`, then next_batch().forward()."""
    from softmax_widgets import DivergenceError

    t = Trainer(small, seed=0)
    for _ in range(5):
        t.train_step()
    t.reset()
    with torch.no_grad():
        t.b += 100
    events = []
    t.on_change(lambda tr, e: events.append(e))
    with pytest.raises(DivergenceError) as err:
        t.next_batch().forward()
    # measured: |W| is the lesson's small init, b is 100 by hand; the largest logit is about 100
    assert float(t.W.detach().abs().max()) < 1 and float(t.b.detach().min()) == 100
    detail = events[-1].detail
    assert detail["ways"][0]["undo"] == {"before": "hand"} and "lower_lr" not in detail["ways_out"]
    text = str(err.value)
    assert len(text.split()) <= 60 and text.count(". ") <= 3  # the cause, why W got there, the ways out
    assert "b was changed outside the phases" in text and "learning rate" not in text and "sgd steps" not in text
    assert "rows 0, 1, 2" in err.value.details  # every number is still there, behind details
    t.undo(before="hand")
    assert float(t.b.detach().abs().max()) < 1
    t.next_batch().forward()  # the way out works: training goes on


def test_the_math_line_after_a_students_sgd_shows_the_step_it_measured(small):
    from softmax_widgets.ui.graph_panel import math_text

    def sgd_no_batch(params, lr, batch_size):
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad

    def my_sgd(params, lr, batch_size):
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad / batch_size

    t = Trainer(small, seed=0)
    t.optimizer = my_sgd
    t.train_step()
    assert "W -= 0.1 · W.grad / 256" in math_text(t) and abs(t.last_step.ratio - 1) < 1e-3
    t.optimizer = sgd_no_batch
    t.train_step()
    assert "256 times the lesson's" in math_text(t) and "changed in place" not in math_text(t)


def test_the_fix_a_message_names_runs_in_a_notebook_that_imported_nothing_but_the_trainer(small):
    """Notebook 03 imports `model`, not `softmax_widgets`: `trainer.x = softmax_widgets.model.y` was a NameError."""
    import re

    def rebinding_sgd(params, lr, batch_size):
        for p in params:
            p = p - lr * p.grad / batch_size

    def mean_cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y]).mean()

    def softmax_without_keepdim(X):
        return X.exp() / X.exp().sum(dim=1)

    for slot, fn, phases in (("optimizer", rebinding_sgd, 5), ("loss_fn", mean_cross_entropy, 2),
                             ("softmax", softmax_without_keepdim, 2)):
        t = Trainer(small, seed=0)
        setattr(t, slot, fn)
        with pytest.raises(CustomFunctionError) as err:
            for _ in range(phases):
                t.step()
        fix = re.search(r"trainer\.use_lesson\([^)]*\)", str(err.value))
        assert fix, str(err.value)
        exec(fix.group(0), {"trainer": t})  # what the student types, in a namespace with the trainer only
        assert getattr(t, slot) is getattr(model, {"optimizer": "sgd", "loss_fn": "cross_entropy"}.get(slot, slot))
        t.step()  # the refused phase runs with the lesson's function


def test_use_lesson_puts_back_one_or_all_and_refuses_an_unknown_name(small):
    t = Trainer(small, seed=0, softmax=lambda X: X.softmax(1), optimizer=lambda ps, lr, bs: None)
    t.use_lesson("sgd")
    assert t.optimizer is model.sgd and t.softmax is not model.softmax
    with pytest.raises(ValueError, match="'softmax', 'cross_entropy', 'sgd'"):
        t.use_lesson("adam")
    assert t.softmax is not model.softmax  # nothing changed
    t.use_lesson()
    assert (t.softmax, t.loss_fn, t.optimizer) == (model.softmax, model.cross_entropy, model.sgd)


def test_a_blowup_after_the_lessons_sgd_is_back_still_names_the_students_step_and_undoes_it(small):
    """The rehearsal's order (issue 18): a step of an sgd without `/ batch_size`, then the lesson's sgd put back and
    a new loss_fn swapped in; the next forward overflows. W got large through the student's step, not the lr and
    not the softmax: the cause names that sgd, and the first way out takes its step back (the lesson's sgd is
    already in place, so no use_lesson is asked for)."""
    from softmax_widgets import DivergenceError

    def sgd_no_div(params, lr, batch_size):
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad

    t = Trainer(small, seed=0)
    for _ in range(3):
        t.train_step()
    start = t.W.detach().clone()
    t.optimizer = sgd_no_div
    while True:  # until W is large enough that the lesson's softmax overflows on the next forward
        t.train_step()
        if t.last_step.is_wild and float(t.W.detach().abs().max()) > 1:
            break
    steps = t.wild_steps
    t.use_lesson("sgd")
    t.loss_fn = lambda y_hat, y: model.cross_entropy(y_hat, y)  # a swap in between, as in the lecture
    with pytest.raises(DivergenceError) as err:
        for _ in range(50):
            t.train_step()
    way = err.value.ways[0]
    assert way.code == "undo" and way.steps == steps and way.lesson is None
    assert "sgd_no_div" in str(err.value) and "lower the learning rate" not in str(err.value)
    t.undo(**way.undo)
    assert torch.equal(t.W.detach(), start) and t.wild_steps == 0
    for _ in range(10):
        t.train_step()
    assert t.history.loss[-1] < 1.5
