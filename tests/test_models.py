"""The next lessons on the same five phases (issue 20): the MLP from scratch, a torch.nn.Module with torch.optim,
a student's own params + net, own data. The oracles are the book's own lines, written here from the chapter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from softmax_widgets import CustomFunctionError, PhaseError, Trainer, load_dataset
from softmax_widgets.data import Dataset
from softmax_widgets.models import MLP, Scratch, relu

DIGITS = load_dataset("digits")  # 8x8 images: 64 inputs, fast enough to step every phase


def book_relu(X):
    a = torch.zeros_like(X)
    return torch.max(X, a)


def linear(d: int = 64) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 10))


def concise(seed: int = 0, **kw) -> Trainer:
    torch.manual_seed(seed)
    return Trainer(DIGITS, batch_size=64, model=linear(), loss_fn=nn.CrossEntropyLoss(reduction="none"),
                   optimizer=torch.optim.SGD, **kw)


def test_the_mlp_is_the_books_four_leaf_tensors_with_its_init():
    t = Trainer(DIGITS, model=MLP(hidden=32), seed=3)
    assert list(t.params) == ["W1", "b1", "W2", "b2"]
    assert [tuple(p.shape) for p in t.params.values()] == [(64, 32), (32,), (32, 10), (10,)]
    assert all(p.is_leaf and p.requires_grad and p.grad is None for p in t.params.values())
    g = torch.Generator().manual_seed(3)  # the book's randn * 0.01, seeded by the Trainer's seed
    torch.testing.assert_close(t.params["W1"].detach(), torch.randn(64, 32, generator=g) * 0.01)
    assert not t.params["b1"].any() and not t.params["b2"].any()
    assert t.model_name == "MLP(hidden=32)" and t.relu is relu
    with pytest.raises(ValueError, match="hidden must be a whole number"):
        MLP(hidden=0)


def test_mlp_steps_give_the_books_numbers():
    """Five iterations of the Trainer against the book's lines on the same batches: net, loss, sgd."""
    t = Trainer(DIGITS, batch_size=64, model=MLP(hidden=32))
    W1, b1, W2, b2 = (p.detach().clone().requires_grad_() for p in t.params.values())
    for _ in range(5):
        t.train_step()
        X, y = t.X, t.y
        H = book_relu(X.reshape((-1, 64)) @ W1 + b1)
        loss = nn.CrossEntropyLoss(reduction="none")(H @ W2 + b2, y)
        loss.sum().backward()  # the book's own sgd (d2l.sgd): the summed loss, then / batch size
        with torch.no_grad():
            for p in (W1, b1, W2, b2):
                p -= 0.1 * p.grad / len(y)
                p.grad.zero_()
        assert abs(t.history.loss[-1] - float(loss.detach().mean())) < 1e-5
    for mine, book in zip(t.params.values(), (W1, b1, W2, b2), strict=True):
        torch.testing.assert_close(mine.detach(), book.detach())


@pytest.mark.parametrize("kind", ["class", "instance"])
def test_a_module_with_torch_optim_gives_the_books_train_epoch_ch3_numbers(kind):
    """updater.zero_grad(); l.mean().backward(); updater.step(): the book's loop for a torch optimizer."""
    torch.manual_seed(0)
    net = linear()
    book = linear()
    book.load_state_dict(net.state_dict())
    opt = torch.optim.SGD if kind == "class" else torch.optim.SGD(net.parameters(), lr=0.1)
    t = Trainer(DIGITS, batch_size=64, model=net, loss_fn=nn.CrossEntropyLoss(reduction="none"), optimizer=opt)
    assert list(t.params) == ["1.weight", "1.bias"]
    loss, updater = nn.CrossEntropyLoss(reduction="none"), torch.optim.SGD(book.parameters(), lr=0.1)
    for _ in range(6):
        t.train_step()
        l = loss(book(t.X), t.y)  # noqa: E741 (the book's name)
        updater.zero_grad()
        l.mean().backward()
        updater.step()
    for mine, theirs in zip(net.parameters(), book.parameters(), strict=True):
        torch.testing.assert_close(mine.detach(), theirs.detach())
    assert "torch.optim.SGD.step()" in repr(t.optimizer.__name__ + ".step()")


def test_a_module_keeps_the_order_rules_and_their_refusals():
    t = concise()
    with pytest.raises(PhaseError, match="next_batch"):
        t.forward()
    t.next_batch()
    t.forward()
    with pytest.raises(PhaseError):
        t.sgd()
    t.zero_grad()
    t.backward()
    t.sgd()
    assert t.iteration == 1
    t.undo()
    assert t.iteration == 0 and t.next_phase.value == "sgd"


def test_a_loss_that_is_a_mean_is_refused_with_nothing_changed():
    torch.manual_seed(0)
    t = Trainer(DIGITS, model=linear(), loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD)
    t.next_batch()
    with pytest.raises(CustomFunctionError, match="reduction='none'"):
        t.forward()
    assert t.y_hat is None and t.next_phase.value == "forward"


def test_a_students_relu_is_checked_like_a_swapped_softmax():
    t = Trainer(DIGITS, batch_size=64, model=MLP(hidden=16))
    t.next_batch()
    before = {n: p.detach().clone() for n, p in t.params.items()}
    said = []
    t.on_change(lambda tr, ev: said.append(ev.message))
    for bad, words in ((lambda X: X[:, :3].clamp(min=0), "shape"), (lambda X: X.detach().clamp(min=0), "autograd"),
                       (lambda X: X * float("nan"), "NaN"), (lambda X: X.undefined(), "AttributeError")):
        t.relu = bad
        with pytest.raises(CustomFunctionError, match=words):
            t.forward()
        assert t.y_hat is None and t.next_phase.value == "forward"
        assert all(torch.equal(p.detach(), before[n]) for n, p in t.params.items())
    assert said[0].startswith("relu set to your <lambda>")

    def my_relu(X):
        return X.clamp(min=0)

    t.relu = my_relu
    t.forward()
    t.relu = relu
    assert said[-1] == "relu set to the book's relu: used from the next forward()"
    with pytest.raises(ValueError, match="must be a function"):
        t.relu = 3
    with pytest.raises(ValueError, match="only an MLP has a relu"):
        Trainer(DIGITS).relu = my_relu


def test_a_students_own_params_and_net_are_checked():
    W = torch.normal(0, 0.01, (64, 10), requires_grad=True)
    b = torch.zeros(10, requires_grad=True)

    def net(X, params):
        return X @ params["W"] + params["b"]

    t = Trainer(DIGITS, batch_size=64, model=(({"W": W, "b": b}), net))
    t.train_step()
    assert t.iteration == 1 and W.grad is not None and list(t.params) == ["W", "b"]

    def closure(X):  # the book's style: the parameters from the enclosing scope
        return X @ W + b

    c = Trainer(DIGITS, model=Scratch({"W": W, "b": b}, closure))
    c.train_step()
    for bad, words in ((lambda X, p: (X @ p["W"])[:, :5], "must return a"), (lambda X, p: (X @ p["W"]).detach(),
                       "autograd cannot"), (lambda X, p: X @ p["W"] * float("inf"), "NaN or inf"),
                       (lambda X, p: X @ p["V"], "KeyError")):
        s = Trainer(DIGITS, model=({"W": W, "b": b}, bad))
        s.next_batch()
        before = W.detach().clone()
        with pytest.raises(CustomFunctionError, match=words):
            s.forward()
        assert s.y_hat is None and torch.equal(W.detach(), before)
    with pytest.raises(ValueError, match="leaf tensor with requires_grad"):
        Scratch({"W": torch.zeros(64, 10)}, net)
    with pytest.raises(ValueError, match="model must be"):
        Trainer(DIGITS, model="mlp")


def test_own_data_from_tensors_is_validated_and_trains():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 4, 4), dtype=torch.uint8, generator=g)
    y = (x.reshape(300, -1).float().mean(dim=1) > 127.5).long()
    data = Dataset.from_tensors(x[:200], y[:200], x[200:], y[200:], ["dark", "light"], name="squares")
    assert data.num_inputs == 16 and data.image_shape == (4, 4) and data.num_classes == 2
    t = Trainer(data, batch_size=50, model=MLP(hidden=8))
    t.fit(2)
    assert t.epoch == 2 and 0 <= t.evaluate() <= 1
    for args, words in (((x[:200], y[:100], x[200:], y[200:], ["a", "b"]), "one label per image"),
                        ((x[:200], y[:200] + 5, x[200:], y[200:], ["a", "b"]), "labels must be 0 to 1"),
                        ((x[:200].float(), y[:200], x[200:].float(), y[200:], ["a", "b"]), "in \\[0, 1\\]"),
                        ((x[:200], y[:200], x[200:, :2], y[200:], ["a", "b"]), "must be alike"),
                        ((x[:200], y[:200], x[200:], y[200:], "ab"), "class names"),
                        ((x[:200], y[:200].float(), x[200:], y[200:], ["a", "b"]), "whole class numbers")):
        with pytest.raises(ValueError, match=words):
            Dataset.from_tensors(*args)
    with pytest.raises(ValueError, match="data must be a Dataset"):
        Trainer(x)


def test_an_mlp_state_file_saves_loads_and_is_refused_onto_another_model(tmp_path):
    t = Trainer(DIGITS, batch_size=64, model=MLP(hidden=16))
    for _ in range(7):
        t.train_step()
    t.next_batch()
    t.forward()
    path = tmp_path / "mlp.pt"
    t.save(path)
    back = Trainer.load(path)
    assert back.model_name == "MLP(hidden=16)" and back.where() == t.where()
    for a, b in zip(back.params.values(), t.params.values(), strict=True):
        assert torch.equal(a.detach(), b.detach())
    back.zero_grad()
    back.backward()
    back.sgd()
    t.zero_grad()
    t.backward()
    t.sgd()
    for a, b in zip(back.params.values(), t.params.values(), strict=True):
        torch.testing.assert_close(a.detach(), b.detach())
    lesson = Trainer(DIGITS)
    with pytest.raises(ValueError, match=r"holds a run of MLP\(hidden=16\), but this Trainer trains the lesson's"):
        lesson.load_state_dict(torch.load(path, weights_only=True))
    lesson_file = tmp_path / "lesson.pt"
    lesson.save(lesson_file)
    with pytest.raises(ValueError, match=r"holds a run of the lesson's softmax regression, but this Trainer trains "
                                         r"MLP\(hidden=16\)"):
        t.load_state_dict(torch.load(lesson_file, weights_only=True))
    with pytest.raises(ValueError, match=r"holds a run of MLP\(hidden=16\), but this Trainer trains MLP\(hidden=8\)"):
        Trainer(DIGITS, model=MLP(hidden=8)).load_state_dict(torch.load(path, weights_only=True))
    sd = t.state_dict()
    sd["params"]["W1"] = sd["params"]["W1"][:, :3]
    with pytest.raises(ValueError, match="W1 must be a torch.float32 tensor of shape"):
        t.load_state_dict(sd)
    # the load is one undo step, and undo of an sgd puts every parameter back exactly
    back.undo()
    assert back.iteration == 7
    back.undo()
    assert back.iteration == 7 and back.model_name == "MLP(hidden=16)"


def test_undo_puts_every_mlp_parameter_and_gradient_back_exactly():
    t = Trainer(DIGITS, batch_size=64, model=MLP(hidden=16))
    t.fit(1)
    t.next_batch()
    t.forward()
    t.zero_grad()
    t.backward()
    params = {n: p.detach().clone() for n, p in t.params.items()}
    grads = {n: p.grad.clone() for n, p in t.params.items()}
    t.sgd()
    t.undo()
    assert all(torch.equal(p.detach(), params[n]) and torch.equal(p.grad, grads[n]) for n, p in t.params.items())
    t.undo()  # backward
    assert all(not p.grad.any() for p in t.params.values())
    with torch.no_grad():  # a change by hand to W2 is seen and can be taken back
        t.params["W2"] += 1
    t.forward()
    t.undo(before="hand")
    assert torch.equal(t.params["W2"].detach(), params["W2"])
    t.reset()
    t.undo()
    assert torch.equal(t.params["W1"].detach(), params["W1"])


def test_reset_restarts_a_module_from_its_first_values():
    t = concise()
    first = {n: p.detach().clone() for n, p in t.params.items()}
    t.fit(1)
    t.reset()
    assert all(torch.equal(p.detach(), first[n]) and p.grad is None for n, p in t.params.items())


def book_train_ch3_mlp(data, num_epochs: int = 10, lr: float = 0.1, batch_size: int = 256, seed: int = 0):
    """The chapter's MLP from scratch, trained with d2l's train_ch3 (train_epoch_ch3 + evaluate_accuracy), as the
    book writes them: a DataLoader shuffling the training set, torch.optim.SGD and l.mean().backward()."""
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

    torch.manual_seed(seed)
    num_inputs, num_outputs, num_hiddens = data.num_inputs, data.num_classes, 256
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens, requires_grad=True) * 0.01)
    b1 = nn.Parameter(torch.zeros(num_hiddens, requires_grad=True))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs, requires_grad=True) * 0.01)
    b2 = nn.Parameter(torch.zeros(num_outputs, requires_grad=True))
    params = [W1, b1, W2, b2]

    def net(X):
        X = X.reshape((-1, num_inputs))
        H = book_relu(X @ W1 + b1)
        return H @ W2 + b2

    loss = nn.CrossEntropyLoss(reduction="none")
    updater = torch.optim.SGD(params, lr=lr)
    # the book's DataLoader(..., batch_size, shuffle=True), each batch fetched as one index (per-image fetching is
    # the book's loader's cost, not its numbers: it made this test 10x slower)
    sampler = BatchSampler(RandomSampler(range(len(data.y_train)), generator=torch.Generator().manual_seed(seed)),
                           batch_size, drop_last=False)
    train_iter = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=None, sampler=sampler)
    test_iter = [(data.x_test[i:i + batch_size], data.y_test[i:i + batch_size])
                 for i in range(0, len(data.y_test), batch_size)]
    test_acc = []
    for _ in range(num_epochs):
        for X, y in train_iter:  # train_epoch_ch3
            y_hat = net(X)
            l = loss(y_hat, y)  # noqa: E741 (the book's name)
            updater.zero_grad()
            l.mean().backward()
            updater.step()
        with torch.no_grad():  # evaluate_accuracy
            right = sum(int((net(X).argmax(dim=1) == y).sum()) for X, y in test_iter)
        test_acc.append(right / len(data.y_test))
    return test_acc


@pytest.mark.slow
@pytest.mark.timeout(3600)  # two 10-epoch runs of a 784-256-10 MLP: ~2 min on 2 idle cores, far more when shared
def test_mlp_ten_epochs_reach_the_books_own_loop_on_the_same_data(fashion):
    """Issue 20's acceptance: MLP, 10 epochs, lr 0.1, batch 256, within 0.02 of the book's loop run here."""
    import time

    start = time.perf_counter()
    book = book_train_ch3_mlp(fashion)
    book_s = time.perf_counter() - start
    t = Trainer(fashion, lr=0.1, batch_size=256, model=MLP(hidden=256))
    start = time.perf_counter()
    ours = t.fit(10)
    ours_s = time.perf_counter() - start
    print(f"\nMLP 10 epochs: Trainer test acc {ours[-1].test_acc:.4f} ({ours_s:.0f} s), book's loop "
          f"{book[-1]:.4f} ({book_s:.0f} s); per epoch {[round(r.test_acc, 4) for r in ours]} vs "
          f"{[round(a, 4) for a in book]}")
    # at lr 0.1 the test accuracy swings by up to ±0.045 from one epoch to the next (seen: the Trainer's epochs 9
    # and 10 were 0.8506 and 0.8322), and the two loops draw other inits and batches: the accuracy each loop
    # reached is read as the mean of its last three epochs, so the comparison is of the loops, not of one epoch's luck
    reached = sum(r.test_acc for r in ours[-3:]) / 3
    book_reached = sum(book[-3:]) / 3
    assert abs(reached - book_reached) <= 0.02, (reached, book_reached)
    assert ours[-1].test_acc > 0.8  # the book's figure: about 0.85


@pytest.mark.slow
def test_the_concise_softmax_regression_after_three_epochs_is_in_the_lessons_band(fashion):
    from softmax_widgets.data import EXPECTED

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def init_weights(m):  # the book's concise lesson: normal(0, 0.01) weights
        if type(m) is nn.Linear:
            nn.init.normal_(m.weight, std=0.01)

    net.apply(init_weights)
    t = Trainer(fashion, lr=0.1, batch_size=256, model=net, loss_fn=nn.CrossEntropyLoss(reduction="none"),
                optimizer=torch.optim.SGD)
    acc = t.fit(3)[-1].test_acc
    _, lo, hi = EXPECTED["fashion-mnist"][3]
    print(f"\nconcise softmax regression, 3 epochs: test acc {acc:.4f} (lesson's band {lo}-{hi})")
    assert lo - 0.01 <= acc <= hi + 0.01


def test_a_torch_optimizer_can_be_swapped_in_later_and_the_lessons_sgd_back():
    torch.manual_seed(0)
    t = Trainer(DIGITS, batch_size=64, model=linear())
    said = []
    t.on_change(lambda tr, ev: said.append(ev.message))
    t.optimizer = torch.optim.SGD
    assert said[-1] == "optimizer set to your torch.optim.SGD: used from the next sgd()"
    t.train_step()
    assert t.iteration == 1
    t.use_lesson("sgd")
    t.train_step()
    assert t.iteration == 2
    with pytest.raises(ValueError, match="other tensors than this model's parameters"):
        t.optimizer = torch.optim.SGD(linear().parameters(), lr=0.1)
