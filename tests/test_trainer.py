"""The Trainer contract: the lesson's arithmetic, determinism, and every order rule."""

import math

import numpy as np
import pytest
import torch

from softmax_widgets import (
    CustomFunctionError,
    DivergenceError,
    Phase,
    PhaseError,
    Trainer,
    model,
)
from softmax_widgets.messages import say
from tests.conftest import needs_fashion

PHASES = ["next_batch", "forward", "zero_grad", "backward", "sgd"]


def snapshot(t: Trainer):
    """Everything a refused call must leave as it was."""
    grads = [None if p.grad is None else p.grad.clone() for p in (t.W, t.b)]
    return (t.W.detach().clone(), t.b.detach().clone(), grads, t.iteration, t.epoch, t.next_phase,
            t.last_phase, len(t.history.loss), t.position, t.lr, t.batch_size, t.grad_passes)


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y)
        elif isinstance(x, list):
            assert all((u is None and v is None) or torch.equal(u, v) for u, v in zip(x, y, strict=True))
        else:
            assert x == y


@pytest.fixture
def t(digits):
    return Trainer(digits, batch_size=64)


# ---- the lesson's loop, verbatim, as the oracle ----
def lesson_iteration(W, b, X, y, lr, batch_size):
    def softmax(X):
        X_exp = X.exp()
        partition = X_exp.sum(dim=1, keepdim=True)
        return X_exp / partition

    def net(X):
        return softmax(torch.mm(X.view((-1, W.shape[0])), W) + b)

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat.gather(1, y.view(-1, 1)))

    def sgd(params, lr, batch_size):
        for param in params:
            param.data -= lr * param.grad / batch_size

    y_hat = net(X)
    l = cross_entropy(y_hat, y).sum()  # noqa: E741 (the lesson's name)
    for param in (W, b):
        if param.grad is not None:
            param.grad.data.zero_()
    l.backward()
    sgd([W, b], lr, batch_size)
    return l.item()


def _check_against_lesson(data, iterations, batch_size=256):
    t = Trainer(data, lr=0.1, batch_size=batch_size, seed=0)
    np.random.seed(0)  # noqa: NPY002 (the lesson's own legacy init: the same draws as the Trainer's seed 0)
    W = torch.tensor(np.random.normal(0, 0.01, (data.num_inputs, 10)),  # noqa: NPY002 (as the lesson)
                     dtype=torch.float).requires_grad_()
    b = torch.zeros(10, dtype=torch.float).requires_grad_()
    assert torch.equal(W.detach(), t.W.detach())
    for _ in range(iterations):
        t.next_batch()
        loss = lesson_iteration(W, b, t.X, t.y, 0.1, len(t.y))
        for phase in PHASES[1:]:
            getattr(t, phase)()
        assert math.isclose(t.loss_value, loss, rel_tol=1e-5)
        torch.testing.assert_close(t.W.detach(), W.detach(), rtol=0, atol=1e-5)
        torch.testing.assert_close(t.b.detach(), b.detach(), rtol=0, atol=1e-5)


@needs_fashion
def test_each_iteration_equals_the_lessons_loop_on_fashion_mnist(fashion):
    _check_against_lesson(fashion, 30)


def test_each_iteration_equals_the_lessons_loop_on_digits(digits):
    _check_against_lesson(digits, 12, batch_size=100)  # crosses an epoch; remainder batch of 37


def test_the_phases_in_order(t):
    assert t.next_phase is Phase.NEXT_BATCH and t.last_phase is None
    t.next_batch()
    assert t.X.shape == (64, 64) and t.y.shape == (64,) and t.next_phase is Phase.FORWARD
    t.forward()
    assert t.y_hat.shape == (64, 10) and t.loss.dim() == 0
    torch.testing.assert_close(t.y_hat.sum(1), torch.ones(64))
    assert t.next_phase is Phase.ZERO_GRAD
    t.zero_grad()
    assert float(t.W.grad.abs().sum()) == 0.0 and t.next_phase is Phase.BACKWARD
    t.backward()
    assert float(t.W.grad.abs().sum()) > 0 and t.next_phase is Phase.SGD
    W0 = t.W.detach().clone()
    t.sgd()
    torch.testing.assert_close(t.W.detach(), W0 - 0.1 * t.W.grad / 64)
    assert t.iteration == 1 and len(t.history.loss) == 1 and t.next_phase is Phase.NEXT_BATCH


def test_step_runs_the_next_phase_and_train_step_finishes_an_iteration(t):
    assert [t.step() for _ in range(5)] == list(Phase)
    t.next_batch()
    t.forward()
    loss = t.train_step()  # finishes: zero_grad, backward, sgd
    assert t.iteration == 2 and t.last_phase is Phase.SGD and loss == t.history.loss[-1]


@pytest.mark.parametrize(("calls", "refused", "why"), [  # the rule that refused (its words: test_messages)
    ([], "forward", "refuse.forward.no_batch"),
    ([], "backward", "refuse.backward.no_batch"),
    ([], "sgd", "refuse.sgd.no_batch"),
    (["next_batch"], "backward", "refuse.backward.no_forward"),
    (["next_batch", "forward"], "sgd", "refuse.sgd.not_zeroed"),
    (["next_batch", "forward", "zero_grad"], "sgd", "refuse.sgd.no_backward"),
    (["next_batch", "forward", "backward"], "backward", "refuse.backward.consumed"),
    (["next_batch", "forward", "backward", "zero_grad"], "sgd", "refuse.sgd.consumed_zeroed"),
    (["next_batch", "forward", "backward", "sgd"], "sgd", "refuse.sgd.used_batch"),
    (["next_batch", "forward", "backward", "sgd"], "forward", "refuse.forward.used_batch"),
    (["next_batch", "forward", "backward", "sgd"], "backward", "refuse.backward.used_batch"),
])
def test_order_rules_raise_teaching_errors_and_change_nothing(t, calls, refused, why):
    for c in calls:
        getattr(t, c)()
    before = snapshot(t)
    with pytest.raises(PhaseError) as err:
        getattr(t, refused)()
    assert err.value.id == why and str(err.value) == say(why)
    assert_same(before, snapshot(t))
    t.train_step()  # and the run goes on from there
    assert t.iteration == (1 if calls[-1:] != ["sgd"] else 2)


def test_skipping_zero_grad_accumulates_and_warns(t):
    events = []
    t.on_change(lambda tr, e: events.append(e))
    t.train_step()  # iteration 1: grads of batch 1 stay in W.grad
    g1 = t.W.grad.clone()
    t.next_batch()
    t.forward()
    t.backward()  # no zero_grad: W.grad = g1 + g2
    assert t.grad_passes == 2
    g2 = t.W.grad - g1
    W0 = t.W.detach().clone()
    t.sgd()
    torch.testing.assert_close(t.W.detach(), W0 - 0.1 * (g1 + g2) / 64)
    warnings = [e for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and "accumulated over 2 backward passes" in warnings[0].message
    assert "zero_grad" in warnings[0].message


def test_same_seed_same_init_and_batch_order_bit_for_bit(digits):
    a, b = Trainer(digits, batch_size=50, seed=3), Trainer(digits, batch_size=50, seed=3)
    for _ in range(40):
        a.train_step()
        b.train_step()
        assert torch.equal(a.batch_indices, b.batch_indices)
    assert torch.equal(a.W.detach(), b.W.detach()) and a.history == b.history
    c = Trainer(digits, batch_size=50, seed=4)
    assert not torch.equal(c.W.detach(), Trainer(digits, seed=3).W.detach())


def test_reset_replays_the_same_run(t):
    for _ in range(7):
        t.train_step()
    W7, hist = t.W.detach().clone(), t.history.copy()
    t.reset()
    assert t.iteration == 0 and t.history.loss == [] and t.W.grad is None
    for _ in range(7):
        t.train_step()
    assert torch.equal(W7, t.W.detach()) and hist == t.history
    t.reset(seed=5)
    assert t.seed == 5 and not torch.equal(W7, t.W.detach())


@needs_fashion
def test_last_batch_of_an_epoch_is_the_remainder(fashion):
    t = Trainer(fashion)
    assert t.batches_per_epoch == 235
    for _ in range(234):
        t.train_step()
    t.next_batch()
    assert len(t.y) == 96  # 60,000 = 234 * 256 + 96
    t.forward()
    t.zero_grad()
    t.backward()
    W0 = t.W.detach().clone()
    t.sgd()
    torch.testing.assert_close(t.W.detach(), W0 - 0.1 * t.W.grad / 96)  # divides by the real size
    assert t.epoch == 1 and len(t.history.test_acc) == 1 and t.history.epoch_iteration == [235]
    assert t.history.batch_size[-1] == 96


@pytest.mark.parametrize("lr", [0, -0.1, math.nan, math.inf, "0.1", None, True])
def test_bad_learning_rates_are_refused_before_anything_changes(digits, t, lr):
    with pytest.raises(ValueError, match="learning rate must be a finite number > 0"):
        Trainer(digits, lr=lr)
    t.train_step()
    before = snapshot(t)
    with pytest.raises(ValueError, match="learning rate"):
        t.lr = lr
    assert_same(before, snapshot(t))


@pytest.mark.parametrize("bs", [0, -1, 1438, 2.5, 64.0, "64", True])
def test_bad_batch_sizes_are_refused(digits, t, bs):
    with pytest.raises(ValueError, match="batch size"):
        Trainer(digits, batch_size=bs)
    before = snapshot(t)
    with pytest.raises(ValueError, match="batch size"):
        t.batch_size = bs
    assert_same(before, snapshot(t))


@pytest.mark.parametrize("device", ["tpu", "gpu:7", "not a device", 3.5])
def test_unknown_devices_are_refused(digits, device):
    with pytest.raises(ValueError, match="device"):
        Trainer(digits, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_says_so(digits):
    with pytest.raises(ValueError, match="not available here.*device='cpu'"):
        Trainer(digits, device="cuda")


def test_unknown_dataset_name_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        Trainer("cifar-10")


def test_hyper_parameters_change_between_steps(t):
    t.train_step()
    t.lr, t.batch_size = 0.5, 10
    t.next_batch()
    assert len(t.y) == 10
    t.forward()
    t.zero_grad()
    t.backward()
    W0 = t.W.detach().clone()
    t.sgd()
    torch.testing.assert_close(t.W.detach(), W0 - 0.5 * t.W.grad / 10)
    assert t.history.batch_size == [64, 10]


def test_listeners_get_every_phase_and_a_broken_one_is_isolated(t, caplog, capsys):
    seen = []

    def broken(trainer, event):
        raise RuntimeError("a view bug")

    t.on_change(broken)
    t.on_change(lambda tr, e: seen.append((e.kind, e.phase)))
    t.train_step()
    assert seen == [("phase", p) for p in Phase]
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == len(Phase)  # the log has every one
    # the student is told once, where a notebook shows it (stderr), with the traceback and how to remove it
    err = capsys.readouterr().err
    assert err.count("raised RuntimeError: a view bug") == 1 and "remove=True" in err and "Traceback" in err
    t.on_change(broken, remove=True)
    assert t.listener_count == 1


def test_status_messages_say_what_happened(t):
    msgs = []
    t.on_change(lambda tr, e: msgs.append(e.message))
    t.train_step()
    assert msgs[0].startswith("next_batch: 64 images")
    assert msgs[1].startswith("forward: loss 2.") and "% correct" in msgs[1]
    assert msgs[3].startswith("backward: W.grad filled, ‖W.grad‖")
    assert msgs[4].startswith("sgd: W -= 0.1")


def test_a_student_softmax_is_used_and_a_broken_one_is_explained(t):
    calls = []

    def my_softmax(X):
        calls.append(X.shape)
        return model.softmax(X)

    t.softmax = my_softmax
    t.train_step()
    assert calls == [(64, 10)]

    t.softmax = lambda X: X.exp()[:, :5]  # wrong shape
    t.next_batch()
    before = snapshot(t)
    with pytest.raises(CustomFunctionError) as err:
        t.forward()
    assert err.value.id == "measure.probabilities" and "shape (64, 5)" in str(err.value)
    assert_same(before, snapshot(t))

    def raises(X):
        raise TypeError("oops")

    t.softmax = raises
    with pytest.raises(CustomFunctionError) as err:
        t.forward()
    assert err.value.id == "student.raised" and "TypeError: oops" in str(err.value)
    t.softmax = model.stable_softmax
    t.train_step()
    assert t.iteration == 2


def test_student_optimizer_that_raises_leaves_w_unchanged(t):
    def half_done(params, lr, batch_size):
        params[0].data -= 1.0
        raise ValueError("forgot b")

    t.optimizer = half_done
    t.next_batch(); t.forward(); t.zero_grad(); t.backward()  # noqa: E702
    W0 = t.W.detach().clone()
    with pytest.raises(CustomFunctionError) as err:
        t.sgd()
    assert err.value.id == "student.raised" and "ValueError" in str(err.value)
    assert torch.equal(W0, t.W.detach()) and t.iteration == 0
    t.optimizer = model.sgd
    t.sgd()
    assert t.iteration == 1


def test_divergence_is_explained_and_loses_nothing(digits):
    t = Trainer(digits, lr=1e4, batch_size=64)
    events = []
    t.on_change(lambda tr, e: events.append(e))
    # the wording is the point: the lesson's divergence is read aloud, its fix "lower the learning rate" in words
    with pytest.raises(DivergenceError, match="(?s)Ways out.*undo.*lower the learning rate") as info:
        for _ in range(50):
            t.train_step()
    assert "inf" in str(info.value) or "nan" in str(info.value).lower()
    assert torch.isfinite(t.W).all() and torch.isfinite(t.b).all()
    assert all(math.isfinite(x) for x in t.history.loss) and len(t.history.loss) == t.iteration
    assert events[-1].kind == "divergence" and events[-1].level == "error"
    # the way out: a lower lr from the initial weights; the history so far is kept until then
    t.lr = 0.1
    t.reset()
    t.train_step()
    assert t.iteration == 1


@needs_fashion
@pytest.mark.slow
def test_five_epochs_reach_the_lessons_published_numbers(fashion):
    t = Trainer(fashion)
    results = t.fit(5)
    last = results[-1]
    assert abs(last.loss - 0.486) <= 0.01 and abs(last.train_acc - 0.836) <= 0.01
    assert 0.80 <= last.test_acc <= 0.85
    assert abs(results[0].loss - 0.7878) < 0.02  # epoch 1 of the published run
    assert t.evaluate() == last.test_acc and t.epoch == 5 and len(t.history.test_acc) == 5


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none)")
def test_cuda_matches_cpu(digits):
    cpu, gpu = Trainer(digits, batch_size=64), Trainer(digits, batch_size=64, device="cuda")
    for _ in range(30):
        cpu.train_step()
        gpu.train_step()
    assert gpu.W.device.type == "cuda"
    torch.testing.assert_close(gpu.W.detach().cpu(), cpu.W.detach(), rtol=1e-4, atol=1e-5)
    assert abs(gpu.evaluate() - cpu.evaluate()) < 0.01


def test_a_swap_says_whose_function_it_is_not_softmax_set_to_softmax(digits):
    from softmax_widgets import model

    t = Trainer(digits)
    said = []
    t.on_change(lambda tr, ev: said.append(ev.message))

    def my_softmax(X):
        return X.exp() / X.exp().sum(dim=1, keepdim=True)

    t.softmax = my_softmax
    t.softmax = model.softmax
    t.use_stable_softmax()
    t.optimizer = model.sgd
    assert said == ["softmax set to your my_softmax: used from the next forward()",
                    "softmax set to the lesson's softmax: used from the next forward()",
                    "softmax set to the stable softmax (it subtracts each row's max before exp): used from the next "
                    "forward()",
                    "optimizer set to the lesson's sgd: used from the next sgd()"]
