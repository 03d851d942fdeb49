"""Writes examples/01_softmax_from_scratch.ipynb (kept as code so the notebook stays reviewable).

`python tools/make_notebook_01.py [OUT]` writes OUT instead (tests compare the two). Cell ids are kept from the
notebook already at the target, cell by cell, so a rerun changes only what the cells say.
"""

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("""# Softmax regression from scratch, one phase at a time

The classic lesson trains a linear model `softmax(X @ W + b)` on Fashion-MNIST with a hand-written softmax,
cross-entropy and SGD (lr 0.1, batch 256). Here the loop is cut into the five calls you would type yourself:

```
next_batch()  →  forward()  →  zero_grad()  →  backward()  →  sgd()
```

Run each cell and read what it changed. Calling them in the wrong order is allowed: you get an error that
says what went wrong and what to call next."""),
    new_code_cell("""import inspect

import torch

from softmax_widgets import Trainer, model
from softmax_widgets.data import expected_accuracy, load_or_offline
from softmax_widgets.export import weight_grid_image
from softmax_widgets.images import image_grid

# Fashion-MNIST from $SOFTMAX_WIDGETS_DATA (the folder that holds FashionMNIST/raw/), else from a cache folder,
# downloaded the first time. With no network it falls back to the 6,000-image subset shipped with the package.
data, note = load_or_offline("fashion-mnist")
if note:
    print("NOTE:", note)  # print(note.details): the folder looked in, what failed, and root=
data"""),
    new_markdown_cell("""## The data: 28×28 grey images of ten kinds of clothing

Each image is a row of 784 numbers in [0, 1] (`data.x_train`), its class a number from 0 to 9 (`data.y_train`,
named by `data.classes`). The first twenty training images:"""),
    new_code_cell("""image_grid(data, count=20)"""),
    new_markdown_cell("""## The lesson's code

These are the functions the Trainer runs, printed from the package itself (`softmax_widgets.model`), so what you
read here is what runs:"""),
    new_code_cell("""for function in (model.softmax, model.cross_entropy, model.sgd):
    print(inspect.getsource(function))"""),
    new_markdown_cell("""## The model's parameters

`W` has one column per class and one row per pixel; `b` one number per class. The lesson draws `W` from
N(0, 0.01²) and starts `b` at zero. Both are leaf tensors with `requires_grad=True`, so autograd tracks them."""),
    new_code_cell("""t = Trainer(data, lr=0.1, batch_size=256, seed=0)
print("W:", tuple(t.W.shape), "b:", tuple(t.b.shape), "requires_grad:", t.W.requires_grad)
print(f"W mean {t.W.mean().item():+.4f}, std {t.W.std().item():.4f}; b = {t.b.tolist()}")
t"""),
    new_markdown_cell("""## 1. `next_batch()`: a slice of this epoch's shuffled order

`X` is a batch of flattened images (one row per image, pixels in [0, 1]); `y` holds their labels."""),
    new_code_cell("""t.next_batch()
print("X:", tuple(t.X.shape), t.X.dtype, f"pixels in [{t.X.min().item():.0f}, {t.X.max().item():.0f}]")
print("y:", tuple(t.y.shape), "first labels:", [data.classes[i] for i in t.y[:5].tolist()])"""),
    new_markdown_cell("""## 2. `forward()`: probabilities and the loss

`y_hat = softmax(X @ W + b)` gives each image a probability per class (each row sums to 1 on paper; in float32,
which keeps about 7 significant digits, a sum of ten rounded numbers can miss 1 by about 1e-7). With `W` close to
zero every class gets about 1/10. The loss is `cross_entropy(y_hat, y).sum()`: minus the log of the probability
given to the true class, summed over the batch."""),
    new_code_cell("""t.forward()
sums = t.y_hat.sum(dim=1)
print("y_hat:", tuple(t.y_hat.shape), "row sums:", ", ".join(f"{s:.4f}" for s in sums[:3].tolist()),
      f"(the largest miss of 1 in the batch, float32 rounding: {(sums - 1).abs().max().item():.0e})")
print("probabilities of the first image:", [round(p, 3) for p in t.y_hat[0].tolist()])
B = len(t.y)
print(f"loss (summed): {t.loss.item():.2f} = {t.loss.item() / B:.3f} per image")
print(f"a model that guesses 1/10 for every class would score -log(0.1) = {-torch.tensor(0.1).log().item():.3f}")
print(f"{t.correct} of {B} predictions correct")"""),
    new_markdown_cell("""## The graph `forward()` just built

Autograd recorded every operation of the forward pass. `autograd_graph(t)` walks it back from the loss through
`grad_fn.next_functions`: PyTorch's name for each node, the shape it made, its part of the lesson and the line of
code that created it. Only `W` and `b` are leaves (`AccumulateGrad`); `X` and `y` need no gradient, so they are
not in the graph. `DivBackward0` made `y_hat`; the nodes below it compute the loss."""),
    new_code_cell("""from softmax_widgets.graph import autograd_graph

print(autograd_graph(t))"""),
    new_markdown_cell("""## What if you call `sgd()` now?

There are no gradients of this batch yet. The Trainer refuses and tells you what to call next; nothing changed."""),
    new_code_cell("""from softmax_widgets import PhaseError

try:
    t.sgd()
except PhaseError as err:
    print("PhaseError:", err)"""),
    new_markdown_cell("""## 3. `zero_grad()` and 4. `backward()`

`backward()` *adds* d(loss)/dW into `W.grad`, so the old gradients must be zeroed first. For this model the
gradient has a closed form, `Xᵀ (P − Y)`, where `P` is `y_hat` and `Y` the one-hot labels: compare."""),
    new_code_cell("""t.zero_grad()
print("after zero_grad: |W.grad| =", t.W.grad.norm().item())
t.backward()
print(f"after backward: |W.grad| = {t.W.grad.norm().item():.3f}, |b.grad| = {t.b.grad.norm().item():.3f}")
Y = torch.nn.functional.one_hot(t.y, data.num_classes).float()
by_hand = t.X.T @ (t.y_hat.detach() - Y)
print("autograd equals Xᵀ(P − Y):", torch.allclose(t.W.grad, by_hand, atol=1e-4))"""),
    new_markdown_cell("""## After `backward()`: the graph is used up

`backward()` walked the graph from the loss up to `W` and `b`, then freed the tensors its nodes had saved for it.
The structure is still there to look at, but a second `backward()` would need those tensors: the Trainer refuses
it until the next `forward()` builds a new graph."""),
    new_code_cell("""g = autograd_graph(t)
print("saved tensors freed:", g.freed)
print(f"on the leaves: ‖W.grad‖ = {g.labelled('W').grad_norm:.3f}, ‖b.grad‖ = {g.labelled('b').grad_norm:.3f}")
try:
    t.backward()
except PhaseError as err:
    print("PhaseError:", err)"""),
    new_markdown_cell("""## 5. `sgd()`: one step downhill

`W -= lr * W.grad / batch_size` (and `b` likewise). That finishes iteration 1."""),
    new_code_cell("""W_before = t.W.detach().clone()
t.sgd()
print(f"W moved by {(t.W.detach() - W_before).norm().item():.4f}; iteration {t.iteration}")
print("history: loss per image", [round(v, 4) for v in t.history.loss],
      "train acc", [round(v, 3) for v in t.history.train_acc])"""),
    new_markdown_cell("""## Skip `zero_grad()` on purpose

Two backward passes without zeroing add up: the Trainer lets you do it and warns when `sgd()` applies the sum."""),
    new_code_cell("""t.on_change(lambda trainer, event: print("  event:", event.kind, "-", event.message))
t.next_batch()
t.forward()
t.backward()   # no zero_grad: W.grad still holds the last batch's gradient
t.sgd()
print("backward passes summed in W.grad:", t.grad_passes)"""),
    new_markdown_cell("""## The rest of the lesson

`train_step()` runs a whole iteration; `run_epoch()` the rest of an epoch, then the test accuracy. On the full
Fashion-MNIST the book reaches about 0.84 train / 0.82 test accuracy after 5 epochs. The second cell below first
prints what to expect on the data this notebook loaded: the offline 6,000-image subset sees a tenth of the
images per epoch, so it ends lower (that is the data, not a bug)."""),
    new_code_cell("""t = Trainer(data, lr=0.1, batch_size=256, seed=0)  # a fresh start, without the printing listener
for _ in range(20):
    t.train_step()
print(f"W after {t.iteration} iterations: one image per class, red pixels vote for it, blue against")
weight_grid_image(t)"""),
    new_code_cell("""print(expected_accuracy(data.name))
for _ in range(3):  # each line: epoch, loss, train acc, test acc
    print(t.run_epoch())
print(f"W after {t.epoch} epochs ({t.iteration} iterations): each column has become a template of its class")
weight_grid_image(t)"""),
    new_markdown_cell("""## Next

* [02_dashboard.ipynb](02_dashboard.ipynb): the same loop with a button per line of code, live plots of the
  loss, the accuracy and these ten W images, and Play / Pause.
* [03_instructor_live_coding.ipynb](03_instructor_live_coding.ipynb): swap in your own softmax, cross-entropy
  and SGD while it trains, then make the classic mistakes on purpose."""),
]

# what JupyterLab writes for ipykernel's python3 kernel: the same, so opening the notebook changes nothing
# (`softmax-widgets lab` adds this machine's language_info, Python version included, to the copies it makes)
nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
})
shipped = Path(__file__).resolve().parents[1] / "examples" / "01_softmax_from_scratch.ipynb"
path = Path(sys.argv[1]) if len(sys.argv) > 1 else shipped
if path.exists():  # keep the ids of the cells already there: a rerun is a diff of the sources only
    old = nbformat.read(path, as_version=4).cells
    for cell, before in zip(nb.cells, old, strict=False):  # a cell added at the end gets a new id
        if cell.cell_type == before.cell_type and "id" in before:
            cell["id"] = before["id"]
nbformat.write(nb, path)
print("wrote", path)
