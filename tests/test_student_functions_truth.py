"""What the status says about a student's own function is what that function did (issue 18)."""
import pytest
import torch

from softmax_widgets import Trainer, load_dataset
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
