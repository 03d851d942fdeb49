"""Each defect the core issue found on 0.1.0, as a test named after it (each failed there)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from softmax_widgets import DivergenceError, Phase, PhaseError, Trainer, check_softmax

OLD_FILE = Path(__file__).parent / "data" / "state-0.1.0-digits.pt"  # saved by softmax_widgets 0.1.0


@pytest.fixture
def t(digits):
    return Trainer(digits, batch_size=64, seed=0)


def everything(t: Trainer) -> dict:
    """A state_dict plus the listeners and the undo depth: what a refused load must leave as it was."""
    return {**t.state_dict(), "undo": len(t.snapshots), "listeners": t.listener_count}


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


# ---- the loop's order ----
def test_a_second_backward_after_sgd_cannot_record_a_second_iteration_from_one_batch(t):
    t.next_batch()
    t.forward()
    t.zero_grad()
    t.backward()
    t.forward()
    with pytest.raises(PhaseError) as err:
        t.sgd()  # these gradients came from the forward before: sgd needs a backward on the latest one
    assert err.value.id == "refuse.sgd.not_zeroed"
    t.zero_grad()
    t.backward()
    t.sgd()
    with pytest.raises(PhaseError) as err:
        t.backward()  # the forward was computed before this sgd: stale
    assert err.value.id == "refuse.backward.used_batch"
    with pytest.raises(PhaseError) as err:
        t.sgd()
    assert err.value.id == "refuse.sgd.used_batch"
    assert t.iteration == 1 and t.history.batch == [1]


@pytest.mark.parametrize(("calls", "refused", "next_call"), [
    ([], "backward", "next_batch"),
    ([], "sgd", "next_batch"),
    (["next_batch", "forward"], "sgd", "zero_grad"),
    (["next_batch", "forward", "zero_grad"], "sgd", "backward"),
    (["next_batch", "forward", "zero_grad", "backward"], "backward", "sgd"),
])
def test_a_refusal_names_first_the_call_step_makes_next(t, calls, refused, next_call):
    for c in calls:
        getattr(t, c)()
    assert t.next_phase.value == next_call  # the lit button
    with pytest.raises(PhaseError) as err:
        getattr(t, refused)()
    told = re.search(r"[Cc]all (\w+)\(\)", str(err.value))  # the first call the student is told to make
    assert told and told.group(1) == next_call, str(err.value)


def zeroing_sgd(params, lr, batch_size):
    """Some textbooks' sgd: update, then zero the gradients itself."""
    for p in params:
        p.data -= lr * p.grad / batch_size
        p.grad.zero_()


def test_an_optimizer_that_zeroes_the_gradients_gets_no_false_accumulation_warning(digits):
    mine = Trainer(digits, batch_size=64, seed=0, optimizer=zeroing_sgd)
    lesson = Trainer(digits, batch_size=64, seed=0)
    warnings = []
    mine.on_change(lambda tr, ev: ev.kind == "warning" and warnings.append(ev.message))
    mine.train_step()  # the first iteration: zero_grad as the lesson does
    for _ in range(4):  # then without zero_grad(): the optimizer already left zeros
        mine.next_batch()
        mine.forward()
        mine.backward()
        assert mine.grad_passes == 1
        mine.sgd()
    for _ in range(5):
        lesson.train_step()
    assert warnings == [] and torch.equal(mine.W, lesson.W) and torch.equal(mine.b, lesson.b)
    assert mine.state.grad.value == "zero"  # what W.grad really holds after that optimizer


def test_real_accumulation_still_warns_with_the_true_count(t):
    warnings = []
    t.on_change(lambda tr, ev: ev.kind == "warning" and warnings.append(ev.message))
    t.train_step()
    t.next_batch()
    t.forward()
    t.backward()  # W.grad still holds the last batch's gradient: 2 passes summed
    t.sgd()
    assert t.history.batch == [1, 2] and "accumulated over 2 backward passes" in warnings[-1]


def lesson_like_softmax(X):
    """A student's softmax with exactly the lesson's arithmetic."""
    X_exp = torch.exp(X)
    return X_exp / X_exp.sum(dim=1, keepdim=True)


def test_a_lesson_like_softmax_at_lr_1e4_is_diagnosed_as_exp_overflow_not_blamed(digits):
    t = Trainer(digits, batch_size=64, seed=0, softmax=lesson_like_softmax)
    t.train_step()
    t.lr = 1e4
    with pytest.raises(DivergenceError) as err:
        for _ in range(5):
            t.train_step()
    msg = str(err.value)
    assert err.value.operation == "softmax_exp_overflow" and "exp() overflowed" in msg and "88.7" in msg
    # lr 1e4 is the cause: the stable softmax alone would overflow again at the next steps, so it is not offered
    assert "your softmax returned NaN" not in msg and "lower the learning rate" in msg
    assert "use_stable_softmax" not in msg


def test_divergence_advice_fits_the_state(digits):
    # the stable softmax in use and lr 1: no advice to switch to it
    t = Trainer(digits, batch_size=64, seed=0, lr=1e6).use_stable_softmax()
    with pytest.raises(DivergenceError) as err:
        for _ in range(50):
            t.train_step()
    codes = [w.code for w in err.value.ways]
    assert "stable_softmax" not in codes and "lower_lr" in codes
    # a bias shift of +100 before any sgd: the learning rate is not to blame
    u = Trainer(digits, batch_size=64, seed=0)
    u.next_batch()
    with torch.no_grad():
        u.b[3] += 100.0
    with pytest.raises(DivergenceError) as err:
        u.forward()
    msg = err.value.details
    assert "learning rate is not the cause" in msg and "lower the learning rate" not in msg
    # the change by hand is the cause and undo takes it back; the stable softmax is not offered: with it this batch's
    # backward overflows (1/p of the other classes' exp(-100)), so it is no way out here
    assert "trainer.undo(before='hand')" in msg and "use_stable_softmax" not in msg


def test_a_typo_in_a_students_function_gets_a_hint_not_the_solution(t):
    def my_softmax(X):
        X_exp = X.exp()
        return X_exp / X_epx.sum(dim=1, keepdim=True)  # noqa: F821  the typo is the point

    t.softmax = my_softmax
    t.next_batch()
    with pytest.raises(Exception, match=r"did you mean `X_exp`\?") as err:
        t.forward()
    assert "line 3 of your softmax" in str(err.value) and "keepdim" not in str(err.value).split("(`")[0]


def test_check_result_repr_is_one_line():
    def bad(X):
        return X.exp() / X.exp().sum()
    result = check_softmax(bad)
    assert not result and "\n" not in repr(result) and repr(result).startswith("CheckResult(check_softmax")


# ---- state files ----
def test_load_refuses_private_keys_and_typos_and_changes_nothing(t):
    t.train_step()
    before = everything(t)
    for extra in ({"_batch_fresh": True}, {"iteratoin": 5}, {"__class__": "x"}):
        with pytest.raises(ValueError, match="unknown keys"):
            t.load_state_dict({**t.state_dict(), **extra})
        assert same(everything(t), before)


@pytest.mark.parametrize(("part", "extra"), [
    ("progress", {"_batch_size": 256}), ("progress", {"bacth": "drawn"}), ("functions", {"softmaxx": "softmax"}),
    ("history", {"_loss": []}),
], ids=["progress-private", "progress-typo", "functions-typo", "history-private"])
def test_load_refuses_an_unknown_key_inside_a_section_too(t, part, extra):
    """Unknown keys are refused at every level: a typo or a private name in progress was silently ignored."""
    t.train_step()
    sd = t.state_dict()
    sd[part] = {**sd[part], **extra}
    before = everything(t)
    with pytest.raises(ValueError, match=rf"{part} must have exactly the parts .*Nothing was changed"):
        t.load_state_dict(sd)
    assert same(everything(t), before)


def test_a_csv_renamed_pt_is_refused_in_one_whole_sentence_without_pytorchs_text(t, tmp_path):
    path = tmp_path / "history.pt"
    path.write_text("iteration,loss,train_acc\n1,2.30,0.10\n2,2.10,0.21\n")
    with pytest.raises(ValueError) as err:
        Trainer.load(path, data=t.data)
    text = str(err.value)
    assert text.startswith(f"{path} is not a softmax_widgets state file: it holds a CSV table")
    assert "weights_only" not in text and "…" not in text and text.endswith(".")
    assert "trainer.save(" in text


@pytest.mark.parametrize(("change", "words"), [
    (lambda sd: sd.update(W=torch.zeros(10, 64)), "W must be a float32 tensor of shape (64, 10)"),
    (lambda sd: sd["W"].__setitem__((0, 0), math.nan), "W holds NaN or inf"),
    (lambda sd: sd.update(b=torch.zeros(10, dtype=torch.float64)), "b must be a float32 tensor"),
    (lambda sd: sd.update(iteration=-1), "iteration must be a whole number >= 0"),
    (lambda sd: sd.update(position=10**6), "past the 1437 training images"),
    (lambda sd: sd.update(lr=-0.1), "learning rate must be a finite number > 0"),
    (lambda sd: sd.update(batch_size=0), "batch size must be between 1 and 1437"),
    (lambda sd: sd.update(seed=2**40), "seed must be a whole number"),
    (lambda sd: sd.update(epoch=3), "epoch is 3 but history holds 0"),
    (lambda sd: sd["progress"].update(forward="hovering"), "is not a loop state"),
    (lambda sd: sd["progress"].update(grad="zero", passes=0), "W.grad holds other values"),
    (lambda sd: sd.update(batch_indices=torch.tensor([0, 99999])), "batch_indices must be indices"),
    (lambda sd: sd["history"]["batch"].__setitem__(1, 1), "every recorded iteration must use a batch of its own"),
], ids=["W-shape", "W-nan", "b-dtype", "iteration-negative", "position-past-data", "lr", "batch-size", "seed",
        "epoch-vs-history", "progress-unknown", "progress-vs-grad", "batch-indices", "batch-reused"])
def test_load_validates_every_value_before_anything_changes(t, change, words):
    for _ in range(2):
        t.train_step()
    t.next_batch()
    t.forward()
    t.zero_grad()
    t.backward()
    sd = t.state_dict()
    sd["W"], sd["progress"], sd["history"] = sd["W"].clone(), dict(sd["progress"]), {
        k: list(v) for k, v in sd["history"].items()}
    change(sd)
    before = everything(t)
    with pytest.raises(ValueError) as err:
        t.load_state_dict(sd)
    assert words in str(err.value) and "Nothing was changed" in str(err.value)
    assert same(everything(t), before)


def test_a_truncated_file_is_a_valueerror_naming_the_file(t, tmp_path):
    t.train_step()
    path = tmp_path / "run.pt"
    t.save(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"run\.pt is not a softmax_widgets state file: it (was cut|is empty)"):
            Trainer.load(path)
    path.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(ValueError, match="run.pt"):
        Trainer.load(path, data=t.data)


def test_a_state_from_another_dataset_names_both(fashion, digits):
    f = Trainer(fashion, batch_size=256, seed=0)
    f.train_step()
    d = Trainer(digits, batch_size=64, seed=0)
    before = everything(d)
    with pytest.raises(ValueError, match=r"saved on fashion-mnist .* holds digits"):
        d.load_state_dict(f.state_dict())
    assert same(everything(d), before)


def test_a_0_1_0_state_file_loads_and_continues_exactly(digits):
    """The file was written on another machine: its W matches a run made here within float32 rounding (CPUs with
    other SIMD units round the last bits differently), and it continues exactly, proven on this machine."""
    old = Trainer.load(OLD_FILE, data=digits)
    assert old.iteration == 3 and old.next_phase is Phase.ZERO_GRAD and old.history.batch == [1, 2, 3]
    new = Trainer(digits, batch_size=64, seed=3, lr=0.2)
    for _ in range(3):
        new.train_step()
    new.next_batch()
    new.forward()
    assert new.state == old.state and torch.allclose(new.W, old.W, rtol=0, atol=1e-6)
    assert torch.equal(new.batch_indices, old.batch_indices)  # the same place in the same shuffle
    again = Trainer.load(OLD_FILE, data=digits)  # the same file continued twice here: bit for bit the same
    for _ in range(5):
        old.train_step()
        again.train_step()
        new.train_step()
    assert torch.equal(again.W, old.W) and again.history == old.history
    assert new.history.batch == old.history.batch and new.history.batch_size == old.history.batch_size
    assert new.history.loss == pytest.approx(old.history.loss, rel=1e-5)
    assert torch.allclose(new.W, old.W, rtol=0, atol=1e-5)


def test_trainer_load_status_names_what_was_loaded_and_the_lit_phase(digits, tmp_path):
    t = Trainer(digits, batch_size=64, seed=0)
    t.train_step()
    t.next_batch()
    t.forward()
    t.save(tmp_path / "lesson.pt")
    u = Trainer(digits, batch_size=64, seed=0)
    events = []
    u.on_change(lambda tr, ev: events.append(ev.message))
    u.load_state_dict(torch.load(tmp_path / "lesson.pt", weights_only=True), source="lesson.pt")
    assert events[-1].startswith("loaded lesson.pt: digits, epoch 1, iteration 1") and "next: zero_grad()" in events[-1]
    assert u.next_phase is Phase.ZERO_GRAD and "next: zero_grad()" in repr(Trainer.load(tmp_path / "lesson.pt"))

