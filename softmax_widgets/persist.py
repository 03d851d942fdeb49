"""State files: save a run, and load one only after every value in it passed the checks a live run passes.

The file stores the Trainer's place in the loop by its public names (`progress`: batch, forward, gradient,
passes), never private attribute names, and is read with `weights_only=True`: opening it runs no code.
A refusal (another dataset, a W of another shape, NaN, a position past the data, an unknown key, a truncated
file) is a ValueError that names what is wrong, raised before anything in the Trainer changes.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

from . import hyperparams, measure, model
from .classroom import UPLOAD_LIMIT_BYTES
from .history import History
from .phases import REACHABLE, Batch, Forward, Grad, LoopState, Phase
from .throttle import Throttle

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["FORMAT", "Autosave", "capture", "load_state_dict", "read", "restore", "save", "state_dict"]

FORMAT = "softmax_widgets.trainer/2"
FORMAT_0_1 = "softmax_widgets.trainer/1"  # softmax_widgets 0.1.0: the loop state as private flags
_FUNCTIONS = ("softmax", "loss_fn", "optimizer")
_KEYS = {"format", "dataset", "shape", "lr", "batch_size", "seed", "init_std", "functions", "W", "b", "W.grad",
         "b.grad", "rng", "shuffle", "position", "batch_indices", "y_hat", "loss_value", "correct", "iteration",
         "epoch", "last_phase", "progress", "batches_drawn", "epoch_totals", "epoch_seconds", "history"}
_HISTORY = set(vars(History()))
_PROGRESS = {"batch", "forward", "grad", "passes"}  # the loop state by its public names (phases.LoopState)


# ---- in memory: the whole run, for undo() of reset() and load_state_dict() ----
def capture(t: Trainer) -> dict[str, Any]:
    """Everything that makes this run, by reference where the Trainer replaces (never mutates) a value."""
    def clone(x):
        return None if x is None else x.detach().clone()

    params = t.params
    return {"settings": (t.lr, t.batch_size, t.seed, t.init_std), "functions": tuple(getattr(t, n) for n in _FUNCTIONS),
            "params": {n: clone(p) for n, p in params.items()}, "grads": {n: clone(p.grad) for n, p in params.items()},
            "rng": t.generator.get_state(), "history": t.history.copy(), "epoch_totals": list(t.epoch_totals),
            **{name: getattr(t, name) for name in _REFERENCED}}


_REFERENCED = ("shuffle", "position", "batch_indices", "X", "y", "y_hat", "loss", "loss_value", "correct",
               "iteration", "epoch", "last_phase", "state", "epoch_seconds", "batches_drawn")


def restore(t: Trainer, c: dict[str, Any]) -> None:
    """Put a capture() back; it was taken from this Trainer, so nothing needs checking."""
    t.settings_from(dict(zip(("lr", "batch_size", "seed", "init_std"), c["settings"], strict=True)))
    for name, fn in zip(_FUNCTIONS, c["functions"], strict=True):
        t.set_function(name, fn, quiet=True)  # no "settings" event per function: the caller emits one event
    params = t.params
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(c["params"][n])
    for n, p in params.items():
        p.grad = None if c["grads"][n] is None else c["grads"][n].clone()
    t.generator.set_state(c["rng"])
    t.history, t.epoch_totals = c["history"].copy(), list(c["epoch_totals"])
    for name in _REFERENCED:
        setattr(t, name, c[name])


# ---- on disk ----
def state_dict(t: Trainer) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, gradients, RNG, shuffle position, counters, history."""
    def grad(p: torch.Tensor):
        return None if p.grad is None else p.grad.detach().clone()

    s = t.state
    if t.model is None:
        weights = {"W": t.W.detach().clone(), "b": t.b.detach().clone(), "W.grad": grad(t.W), "b.grad": grad(t.b)}
    else:  # another model: its name, and its parameters by their names (models.py)
        weights = {"model": t.model_name, "params": {n: p.detach().clone() for n, p in t.params.items()},
                   "grads": {n: grad(p) for n, p in t.params.items()}}
    return {
        "format": FORMAT, "dataset": t.data.name, "shape": [t.data.num_inputs, t.data.num_classes, t.num_train],
        "lr": t.lr, "batch_size": t.batch_size, "seed": t.seed, "init_std": float(t.init_std),
        "functions": {name: getattr(getattr(t, name), "__name__", "?") for name in _FUNCTIONS},
        **weights, "rng": t.generator.get_state(),
        "shuffle": t.shuffle, "position": t.position, "batch_indices": t.batch_indices,  # replaced, never mutated
        "y_hat": None if t.y_hat is None else t.y_hat.detach(),
        "loss_value": t.loss_value, "correct": t.correct, "iteration": t.iteration, "epoch": t.epoch,
        "batches_drawn": t.batches_drawn, "last_phase": None if t.last_phase is None else t.last_phase.value,
        "progress": {"batch": s.batch.value, "forward": s.forward.value, "grad": s.grad.value, "passes": s.passes},
        "epoch_totals": list(t.epoch_totals), "epoch_seconds": t.epoch_seconds,
        "history": {name: list(value) for name, value in vars(t.history).items()},
    }


def save(t: Trainer, path: str | os.PathLike) -> None:
    """torch.save of state_dict(): the dataset's name, not the dataset."""
    torch.save(state_dict(t), path)


class Autosave:
    """Keep a state file of `trainer`'s run while it changes (the app page reopens it after a reload): `every_s`
    seconds after a change, on `loop` (the kernel's: between two steps, never inside a phase), at most once per
    `every_s` during Play, and once more as the process exits (Voila shutting a reloaded page's kernel down,
    Ctrl-C of the server). The file is written beside itself and renamed over it: a kill mid-save leaves the
    previous save whole. A failed save (disk full, folder gone) never stops the run: `error` says why, and the
    next change tries again."""

    def __init__(self, trainer: Trainer, path: str | os.PathLike, every_s: float = 5.0, loop=None):
        self.trainer, self.path = trainer, Path(path)
        self.saves, self.error = 0, None
        self._throttle = Throttle(self.save, every_s, loop)
        trainer.on_change(self._changed)
        atexit.register(self.flush)

    def _changed(self, trainer, event) -> None:
        self._throttle.later()  # an event may come from inside a phase (a warning): the save waits for the loop

    def save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            save(self.trainer, tmp)
            os.replace(tmp, self.path)
        except (OSError, RuntimeError) as err:  # torch.save reports a full disk as a RuntimeError
            self.error = err
            tmp.unlink(missing_ok=True)
            return
        self.saves, self.error = self.saves + 1, None

    def flush(self) -> None:
        """Save now if a change is waiting."""
        self._throttle.flush()

    def close(self) -> None:
        """Save what is waiting, then stop following the run."""
        self.flush()
        self.trainer.on_change(self._changed, remove=True)
        atexit.unregister(self.flush)


def read(path: str | os.PathLike | BinaryIO, name: str | None = None) -> dict[str, Any]:
    """Load a state file (a path, or an open binary file such as an upload's bytes in io.BytesIO, named by
    `name`); weights_only: a state file cannot run code when it is opened."""
    name = name or (os.fspath(path) if isinstance(path, str | os.PathLike) else "the uploaded file")
    size = _size(path)
    if size is not None and size > UPLOAD_LIMIT_BYTES:  # torch.load would hold all of it (a 1 GB upload: 1 GB)
        raise ValueError(f"{name} is {size / 2**20:,.0f} MB: too big for a state file of this lesson, which is a few "
                         f"MB at most (the limit is {UPLOAD_LIMIT_BYTES // 2**20} MB). Choose a file that "
                         "trainer.save(path) or the export tab's state file wrote.")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # the unpickler of a corrupt file raises anything (struct.error, KeyError, ...)
        raise ValueError(f"{name} is not a softmax_widgets state file: {_what_it_is(path)}. Choose a file that "
                         "trainer.save(path) or the export tab's state file wrote.") from err
    return upgrade(sd, source=name)


def _size(path: str | os.PathLike | BinaryIO) -> int | None:
    """Bytes in the file (from its current position, for an open one), None where that cannot be told."""
    try:
        if isinstance(path, str | os.PathLike):
            return os.path.getsize(path)
        here = path.tell()
        end = path.seek(0, os.SEEK_END)
        path.seek(here)
        return end - here
    except (OSError, AttributeError, ValueError):
        return None


def _what_it_is(path: str | os.PathLike | BinaryIO) -> str:
    """What a file that torch.load refused holds, in words (PyTorch's own text is about its unpickler)."""
    try:
        if isinstance(path, str | os.PathLike):
            with open(path, "rb") as f:
                head = f.read(4096)
        else:
            path.seek(0)
            head = path.read(4096)
    except OSError:
        return "it could not be read"
    if not head:
        return "it is empty"
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip archive
        return ("it was cut short or damaged (a torch.save archive that does not open), or it holds Python objects "
                "a state file never has")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not a file that torch.save wrote"
    kind = "a CSV table" if "," in text.splitlines()[0] else "text"
    return f"it holds {kind} (it starts {text.splitlines()[0][:40]!r}), not a saved run"


def upgrade(sd: Any, source: str = "this state") -> dict[str, Any]:
    """A 0.1.0 file (private flag names) in today's format; anything that is no state file is refused."""
    if not isinstance(sd, dict) or sd.get("format") not in (FORMAT, FORMAT_0_1):
        got = sd.get("format") if isinstance(sd, dict) else type(sd).__name__
        raise ValueError(f"{source} is not a softmax_widgets Trainer state (format {FORMAT!r}); got {got!r}. "
                         "Make one with trainer.save(path) or trainer.state_dict().")
    if sd["format"] == FORMAT:
        return sd
    try:
        flags, old = sd["flags"], dict(sd)
        batch = Batch.DRAWN if flags["_batch_fresh"] else Batch.USED if old["iteration"] else Batch.NONE
        if old["batch_indices"] is None:
            batch = Batch.NONE
        forward = (Forward.LIVE if flags["_forward_live"] else Forward.CONSUMED if flags["_backward_on_batch"]
                   else Forward.STALE if batch is Batch.USED else Forward.NONE)
        grad = (Grad.NONE if old["W.grad"] is None else Grad.NONFINITE if not flags["_grads_finite"]
                else Grad.FILLED if old["grad_passes"] else Grad.ZERO)
        new = {k: v for k, v in old.items() if k not in ("flags", "perm", "pos", "grad_passes", "epoch_sums")}
        it = int(old["iteration"])
        history = dict(old["history"], batch=list(range(1, it + 1)))  # 0.1.0 kept no batch numbers
        new.update(format=FORMAT, shuffle=old["perm"], position=old["pos"], epoch_totals=old["epoch_sums"],
                   history=history, batches_drawn=it + (batch is Batch.DRAWN),
                   progress={"batch": batch.value, "forward": forward.value, "grad": grad.value,
                             "passes": int(old["grad_passes"])})
    except (KeyError, TypeError) as err:
        raise ValueError(f"{source} is a softmax_widgets 0.1.0 state with a missing or broken part ({err}); "
                         "it cannot be continued. Start again with reset().") from err
    return new


def _check(t: Trainer, sd: dict[str, Any], source: str) -> LoopState:
    """Every value a state must have for this Trainer; returns its LoopState. Raises ValueError, changes nothing."""
    def bad(what: str) -> ValueError:
        return ValueError(f"{source} cannot be loaded: {what}. Nothing was changed.")

    _check_model(t, sd, source)
    keys = _KEYS if "model" not in sd else _MODEL_KEYS
    unknown, missing = set(sd) - keys, keys - set(sd)
    if unknown or missing:
        raise bad(f"unknown keys {sorted(unknown)}" if unknown else f"missing keys {sorted(missing)}")
    shape = [t.data.num_inputs, t.data.num_classes, t.num_train]
    if sd["dataset"] != t.data.name or list(sd["shape"]) != shape:
        raise ValueError(f"{source} was saved on {sd['dataset']} {list(sd['shape'])} (inputs, classes, training "
                         f"images), but this Trainer holds {t.data.name} {shape}. Use Trainer.load(path), which "
                         f"loads {sd['dataset']}, or pass that dataset. Nothing was changed.")
    for check, value in ((hyperparams.check_lr, sd["lr"]), (hyperparams.check_seed, sd["seed"]),
                         (hyperparams.check_init_std, sd["init_std"])):
        try:
            check(value)
        except ValueError as err:
            raise bad(str(err)) from err
    try:
        hyperparams.check_batch_size(sd["batch_size"], t.num_train)
    except ValueError as err:
        raise bad(str(err)) from err
    d, c, n = shape
    if "model" in sd:
        state = _check_params(t, sd, bad)
        _check_counters(sd, n, bad)
        return state
    for key, want in (("W", (d, c)), ("b", (c,)), ("W.grad", (d, c)), ("b.grad", (c,))):
        x = sd[key]
        if x is None and key.endswith(".grad"):
            continue
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != want or x.dtype != torch.float32:
            raise bad(f"{key} must be a float32 tensor of shape {want} for {t.data.name}, got {measure.describe(x)}")
        if key in ("W", "b") and not bool(torch.isfinite(x).all()):
            raise bad(f"{key} holds NaN or inf")
    if (sd["W.grad"] is None) != (sd["b.grad"] is None):
        raise bad("W.grad and b.grad must both be there or both be None")
    p = sd["progress"]
    if not isinstance(p, dict) or set(p) != _PROGRESS:
        got = sorted(map(str, p)) if isinstance(p, dict) else type(p).__name__
        raise bad(f"progress must have exactly the parts {sorted(_PROGRESS)}, got {got}")
    try:
        state = LoopState(Batch(p["batch"]), Forward(p["forward"]), Grad(p["grad"]), int(p["passes"]))
    except (KeyError, TypeError, ValueError) as err:
        raise bad(f"progress {sd['progress']!r:.120} is not a loop state ({err})") from err
    _check_progress(sd, state, bad)
    _check_counters(sd, n, bad)
    return state


_MODEL_KEYS = (_KEYS - {"W", "b", "W.grad", "b.grad"}) | {"model", "params", "grads"}


def _check_model(t: Trainer, sd: dict[str, Any], source: str) -> None:
    """A file of one model is refused onto a Trainer of another, naming both."""
    saved = sd.get("model", "the lesson's softmax regression")
    if saved != t.model_name:
        raise ValueError(f"{source} holds a run of {saved}, but this Trainer trains {t.model_name}: their "
                         "parameters do not fit each other. Load it into a Trainer of the same model (Trainer.load("
                         "path) rebuilds an MLP by itself; pass model= for a module). Nothing was changed.")


def _check_params(t: Trainer, sd: dict[str, Any], bad) -> LoopState:
    """A model's parameters and gradients: the same names and shapes as this Trainer's, finite; then the loop state."""
    params, grads = sd["params"], sd["grads"]
    ours = t.params
    if not isinstance(params, dict) or not isinstance(grads, dict) or list(params) != list(ours) or list(
            grads) != list(ours):
        raise bad(f"params and grads must name this model's parameters {list(ours)}")
    for name, p in ours.items():
        for what, x in ((name, params[name]), (name + ".grad", grads[name])):
            if x is None and what.endswith(".grad"):
                continue
            if not isinstance(x, torch.Tensor) or x.shape != p.shape or x.dtype != p.dtype:
                raise bad(f"{what} must be a {p.dtype} tensor of shape {tuple(p.shape)}, got {measure.describe(x)}")
        if not bool(torch.isfinite(params[name]).all()):
            raise bad(f"{name} holds NaN or inf")
    if len({grads[n] is None for n in ours}) > 1:
        raise bad("the gradients must all be there or all be None")
    first = next(iter(ours))
    view = {**sd, "W.grad": grads[first], "b.grad": torch.cat([g.flatten() for g in grads.values()]) if grads[
        first] is not None else None}
    p = sd["progress"]
    if not isinstance(p, dict) or set(p) != _PROGRESS:
        raise bad(f"progress must have exactly the parts {sorted(_PROGRESS)}")
    try:
        state = LoopState(Batch(p["batch"]), Forward(p["forward"]), Grad(p["grad"]), int(p["passes"]))
    except (KeyError, TypeError, ValueError) as err:
        raise bad(f"progress {sd['progress']!r:.120} is not a loop state ({err})") from err
    _check_progress(view, state, bad)  # every gradient read as one: "b.grad" here stands for all of them
    return state


def _check_progress(sd: dict[str, Any], state: LoopState, bad) -> None:
    """The loop state is one the order rules can reach (phases.REACHABLE), and it agrees with the tensors: a batch
    where one is drawn, gradients where they are filled."""
    if (state.batch, state.forward, state.grad) not in REACHABLE:
        raise bad(f"progress ({state}) is not a place the lesson's loop can reach")
    if state.batch is not Batch.NONE and sd["batch_indices"] is None:
        raise bad(f"progress says the batch is {state.batch.value}, but the file holds no batch")
    if (state.grad is Grad.NONE) != (sd["W.grad"] is None) or state.passes < 0 or (
            state.grad in (Grad.NONE, Grad.ZERO)) != (state.passes == 0):
        raise bad(f"progress says the gradient is {state.grad.value} after {state.passes} passes, which the file's "
                  "W.grad does not match")
    if state.grad is Grad.ZERO and (bool(sd["W.grad"].any()) or bool(sd["b.grad"].any())):
        raise bad("progress says the gradient is zero, but W.grad holds other values")
    finite = sd["W.grad"] is None or bool(torch.isfinite(sd["W.grad"]).all() & torch.isfinite(sd["b.grad"]).all())
    if finite == (state.grad is Grad.NONFINITE):
        raise bad("progress and W.grad disagree about NaN or inf in the gradient")
    if state.forward is Forward.LIVE and sd["y_hat"] is None:
        raise bad("progress has a live forward pass, but the file holds no y_hat")


def _check_counters(sd: dict[str, Any], n: int, bad) -> None:
    """Counters, shuffle and history in range and consistent with each other."""
    for key in ("iteration", "epoch", "position", "correct", "batches_drawn"):
        if isinstance(sd[key], bool) or not isinstance(sd[key], int) or sd[key] < 0:
            raise bad(f"{key} must be a whole number >= 0, got {sd[key]!r:.40}")
    if sd["position"] > n:
        raise bad(f"position {sd['position']} is past the {n} training images")
    perm = sd["shuffle"]
    if perm is not None and (not isinstance(perm, torch.Tensor) or perm.dtype != torch.int64 or perm.shape != (n,)
                             or not torch.equal(torch.sort(perm).values, torch.arange(n))):
        raise bad(f"shuffle must be a permutation of the {n} training images")
    if perm is None and sd["position"]:
        raise bad("position is past 0 but there is no shuffle")
    idx = sd["batch_indices"]
    if idx is not None and (not isinstance(idx, torch.Tensor) or idx.dtype != torch.int64 or idx.dim() != 1
                            or not len(idx) or int(idx.min()) < 0 or int(idx.max()) >= n):
        raise bad(f"batch_indices must be indices of training images (0 to {n - 1})")
    y_hat = sd["y_hat"]
    if y_hat is not None and (idx is None or not isinstance(y_hat, torch.Tensor) or y_hat.dim() != 2
                              or y_hat.shape[0] != len(idx)):
        raise bad("y_hat must have one row per image of the batch")
    if sd["last_phase"] is not None and sd["last_phase"] not in {p.value for p in Phase}:
        raise bad(f"last_phase {sd['last_phase']!r:.40} is not one of the five phases")
    h = sd["history"]
    if not isinstance(h, dict) or set(h) != _HISTORY:
        raise bad(f"history must have exactly the parts {sorted(_HISTORY)}")
    if not all(isinstance(v, list) for v in h.values()):
        raise bad("every part of history must be a list")
    if any(len(h[k]) != sd["iteration"] for k in ("loss", "train_acc", "batch_size", "batch")):
        raise bad(f"iteration is {sd['iteration']} but history holds {len(h['loss'])} losses")
    if sd["iteration"] > sd["batches_drawn"] or h["batch"] != sorted(set(h["batch"])) or (
            h["batch"] and h["batch"][-1] > sd["batches_drawn"]):
        raise bad("every recorded iteration must use a batch of its own, drawn before it")
    if len(h["test_acc"]) != sd["epoch"]:
        raise bad(f"epoch is {sd['epoch']} but history holds {len(h['test_acc'])} test accuracies")
    totals = sd["epoch_totals"]
    if not (isinstance(totals, list) and len(totals) == 3):
        raise bad("epoch_totals must be [summed loss, correct, images]")
    for key in ("loss_value", "epoch_seconds"):
        if not isinstance(sd[key], (int, float)):
            raise bad(f"{key} must be a number")
    if not isinstance(sd["functions"], dict) or set(sd["functions"]) != set(_FUNCTIONS):
        raise bad(f"functions must have exactly the parts {sorted(_FUNCTIONS)}")


def load_run(cls, path, data=None, device: str = "cpu", model=None, **functions):
    """Trainer.load: a `cls` Trainer on `data` (default: the dataset named in the file) continuing the file's run;
    an MLP's file rebuilds its MLP, a module's needs `model=` (and its loss_fn, optimizer)."""
    state = read(path)
    if model is None and "model" in state:
        from . import models
        model = models.from_name(state["model"])
        if model is None:
            raise ValueError(f"{path} holds a run of {state['model']}: pass that model, Trainer.load(path, "
                             "model=...), to continue it.")
    try:
        t = cls(data if data is not None else state["dataset"], lr=state["lr"], batch_size=state["batch_size"],
                seed=state["seed"], init_std=state["init_std"], device=device, model=model, **functions)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path} cannot be loaded: its settings are missing or broken ({err}).") from err
    return t.load_state_dict(state, source=str(path))


def load_state_dict(t: Trainer, sd: Any, source: str = "this state") -> Trainer:
    """Put `t` exactly where state_dict() was taken, after checking every value; refused: nothing changes."""
    sd = upgrade(sd, source)
    state = _check(t, sd, source)
    dev = t.device

    def on(x):
        return None if x is None else x.to(dev)

    t.snapshots.keep_run(t, "load")  # one undo() brings back the run this load replaces
    t.settings_from({"lr": float(sd["lr"]), "batch_size": int(sd["batch_size"]), "seed": int(sd["seed"]),
                     "init_std": float(sd["init_std"])})
    for name, fn_name in sd["functions"].items():
        fn = getattr(model, str(fn_name), None)
        if fn is not None and callable(fn):  # a student's own function cannot live in a file: keep the one set now
            t.set_function(name, fn, quiet=True)
    if "model" in sd:
        weights = [(p, sd["params"][n], sd["grads"][n]) for n, p in t.params.items()]
    else:
        weights = [(t.W, sd["W"], sd["W.grad"]), (t.b, sd["b"], sd["b.grad"])]
    with torch.no_grad():
        for p, value, _ in weights:
            p.copy_(value)
    for p, _, g in weights:
        if g is None:
            p.grad = None
        else:
            p.grad = torch.zeros_like(p, requires_grad=False)  # the parameter's layout, as autograd would
            p.grad.copy_(g)
    t.generator.set_state(sd["rng"].cpu())
    t.shuffle, t.position, t.batch_indices = on(sd["shuffle"]), int(sd["position"]), on(sd["batch_indices"])
    t.y_hat, t.loss = on(sd["y_hat"]), None
    t.loss_value, t.correct = float(sd["loss_value"]), int(sd["correct"])
    t.iteration, t.epoch, t.batches_drawn = int(sd["iteration"]), int(sd["epoch"]), int(sd["batches_drawn"])
    t.last_phase = None if sd["last_phase"] is None else Phase(sd["last_phase"])
    t.state = state
    t.epoch_totals, t.epoch_seconds = list(sd["epoch_totals"]), float(sd["epoch_seconds"])
    t.history = History(**{name: list(value) for name, value in sd["history"].items()})
    return t

