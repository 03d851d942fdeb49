"""The README's bad-input table, one test per row: what a student types or breaks, and what they see.

Every row checks three things: the error type, that the message says what happened and what to do next,
and that nothing already computed is lost (W, b, the history; for data: the retry really works).
"""

from __future__ import annotations

import ctypes
import functools
import http.server
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from softmax_widgets import (
    CustomFunctionError,
    DatasetUnavailableError,
    DivergenceError,
    Trainer,
    load_dataset,
    model,
)
from tests.conftest import FASHION_ROOT, needs_fashion

DIGITS = load_dataset("digits")
N = len(DIGITS.y_train)
RAW_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture
def trained():
    """A Trainer with three iterations recorded and a batch half done: the work a bad input must not lose."""
    t = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
    for _ in range(3):
        t.train_step()
    t.next_batch().forward()
    return t


def kept(t: Trainer):
    """What must survive: W, b and the record."""
    return t.W.detach().clone(), t.b.detach().clone(), list(t.history.loss), t.iteration


def assert_kept(t: Trainer, before) -> None:
    W, b, loss, iteration = before
    assert torch.equal(t.W, W) and torch.equal(t.b, b), "W or b changed"
    assert t.history.loss == loss and t.iteration == iteration, "the history changed"


# ---- hyper-parameters: refused before anything changes ----
HYPER = [
    # (id, attribute, value, words the message must contain)
    ("lr-negative", "lr", -0.1, ["learning rate", "> 0", "0.1"]),
    ("lr-zero", "lr", 0, ["learning rate", "> 0"]),
    ("lr-nan", "lr", math.nan, ["finite"]),
    ("lr-inf", "lr", math.inf, ["finite"]),
    ("lr-text", "lr", "0.1", ["number", "'0.1'"]),
    ("lr-bool", "lr", True, ["number"]),
    ("lr-10**400", "lr", 10**400, ["finite"]),
    ("batch-0", "batch_size", 0, ["between 1 and 1437"]),
    ("batch-negative", "batch_size", -5, ["between 1 and 1437"]),
    ("batch-larger-than-data", "batch_size", N + 1, ["between 1 and 1437", "training images"]),
    ("batch-float", "batch_size", 2.5, ["whole number"]),
    ("batch-float-integral", "batch_size", 64.0, ["whole number"]),
    ("batch-bool", "batch_size", True, ["whole number"]),
    ("batch-text", "batch_size", "64", ["whole number"]),
    ("softmax-not-a-function", "softmax", "softmax", ["must be a function", "use_lesson('softmax')"]),
    ("loss-not-a-function", "loss_fn", None, ["must be a function", "use_lesson('cross_entropy')"]),
    ("optimizer-not-a-function", "optimizer", 0.1, ["must be a function", "use_lesson('sgd')"]),
]


@pytest.mark.parametrize(("attr", "value", "words"), [h[1:] for h in HYPER], ids=[h[0] for h in HYPER])
def test_bad_hyper_parameter_is_refused_and_changes_nothing(trained, attr, value, words):
    before, setting = kept(trained), getattr(trained, attr)
    phase = trained.next_phase
    with pytest.raises(ValueError) as err:
        setattr(trained, attr, value)
    for w in words:
        assert w in str(err.value), str(err.value)
    assert_kept(trained, before)
    assert getattr(trained, attr) == setting and trained.next_phase is phase
    trained.train_step()  # and training simply goes on


def test_batch_size_one_works(trained):
    trained.batch_size = 1
    trained.train_step()
    assert trained.history.batch_size[-1] in (1, 64)  # the half-done batch finishes at its own size
    trained.train_step()
    assert trained.history.batch_size[-1] == 1 and len(trained.X) == 1


def test_batch_size_whole_data_works(trained):
    trained.batch_size = N
    trained.train_step()  # finishes the half-done batch of 64
    trained.train_step()  # the rest of this epoch's shuffle
    assert trained.epoch == 1
    trained.train_step()  # a new epoch: one batch holds every training image
    assert trained.history.batch_size[-1] == N


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True], ids=["negative", "2**32", "float", "bool"])
def test_bad_seed_on_reset_changes_nothing(trained, seed):
    before = kept(trained)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        trained.reset(seed)
    assert_kept(trained, before)


def test_huge_lr_overflowing_w_is_put_back(trained):
    """lr=1e38: sgd() would make W inf; it is put back and the way out named."""
    trained.train_step()
    before = kept(trained)
    trained.lr = 1e38
    with pytest.raises(DivergenceError) as err:
        trained.train_step()
    msg = str(err.value)
    assert "put back" in msg and "lower the learning rate" in msg and "reset()" in msg
    assert_kept(trained, before)
    trained.lr = 0.1  # the way out works: the same iteration now finishes
    trained.train_step()
    assert trained.iteration == before[3] + 1


def test_large_lr_diverges_at_the_next_forward_and_keeps_the_record(trained):
    """lr=1e4: one step makes the logits huge (W stays finite); the next forward explains the overflow."""
    trained.train_step()
    trained.lr = 1e4
    trained.train_step()
    loss_so_far = list(trained.history.loss)
    with pytest.raises(DivergenceError) as err:
        trained.train_step()
    msg = err.value.details
    assert "overflows" in msg and "lower the learning rate" in msg and "trainer.undo(lr_above=0.1)" in msg
    assert trained.history.loss == loss_so_far and bool(torch.isfinite(trained.W).all())
    trained.undo(2)  # the way out named in the message: step back past the big step, lower lr, go on
    trained.lr = 0.1
    trained.train_step()
    assert bool(torch.isfinite(trained.W).all())


# ---- construction: unknown dataset or device ----
@pytest.mark.parametrize(("kwargs", "words"), [
    ({"data": "cifar10"}, ["unknown dataset 'cifar10'", "fashion-mnist", "digits"]),
    ({"data": "", }, ["unknown dataset"]),
    ({"device": "tpu"}, ["unknown device 'tpu'", "'cpu'"]),
    ({"device": "gpu:7"}, ["unknown device 'gpu:7'", "'cpu'"]),
    ({"device": "meta"}, ["not supported", "'cpu'"]),
    ({"device": None}, ["unknown device None"]),
], ids=["dataset-unknown", "dataset-empty", "device-tpu", "device-gpu:7", "device-meta", "device-None"])
def test_unknown_dataset_or_device(kwargs, words):
    args = {"data": DIGITS, **kwargs}
    with pytest.raises(ValueError) as err:
        Trainer(**args)
    for w in words:
        assert w in str(err.value), str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this row is about a machine without CUDA")
def test_cuda_on_a_cpu_machine():
    with pytest.raises(ValueError, match=r"not available here .*use device='cpu'"):
        Trainer(DIGITS, device="cuda")


# ---- a student's own softmax / loss / optimizer ----
def wrong_shape_softmax(X):
    return model.softmax(X)[:, :5]


def nan_softmax(X):
    return model.softmax(X) * math.nan


def raising_softmax(X):
    raise ZeroDivisionError("division by zero")


def inplace_softmax(X):
    X_exp = X.exp()
    X_exp /= X_exp.sum(dim=1, keepdim=True)
    return X_exp


def detached_softmax(X):
    return model.softmax(X).detach()


def wrong_shape_loss(y_hat, y):
    return y_hat[:3, 0]


def nan_loss(y_hat, y):
    return model.cross_entropy(y_hat, y) * math.nan


def raising_loss_fn(y_hat, y):
    raise IndexError("index 10 is out of bounds for dimension 1 with size 10")


def raising_optimizer(params, lr, batch_size):
    params[0].data -= lr * params[0].grad / batch_size  # W moves first, then the bug
    raise NameError("name 'grad' is not defined")


def nan_optimizer(params, lr, batch_size):
    for p in params:
        p.data -= math.nan


def reshaping_optimizer(params, lr, batch_size):
    for p in params:
        p.data = (p - lr * p.grad / batch_size).flatten()


STUDENT = [
    # (id, attribute, function, error type, words)
    ("softmax-wrong-shape", "softmax", wrong_shape_softmax, CustomFunctionError, ["(64, 10)", "(64, 5)"]),
    ("softmax-nan", "softmax", nan_softmax, DivergenceError, ["your softmax returned NaN"]),
    ("softmax-raises", "softmax", raising_softmax, CustomFunctionError, ["your softmax raised ZeroDivisionError"]),
    ("softmax-in-place", "softmax", inplace_softmax, CustomFunctionError, ["autograd", "in-place"]),
    ("softmax-detached", "softmax", detached_softmax, CustomFunctionError, ["does not depend on W", "forward()"]),
    ("loss-wrong-shape", "loss_fn", wrong_shape_loss, CustomFunctionError, ["one loss per image", "(3,)"]),
    ("loss-nan", "loss_fn", nan_loss, DivergenceError, ["your loss_fn returned NaN"]),
    ("loss-raises", "loss_fn", raising_loss_fn, CustomFunctionError, ["your loss_fn raised IndexError"]),
    ("optimizer-raises", "optimizer", raising_optimizer, CustomFunctionError, ["your optimizer raised NameError"]),
    ("optimizer-nan", "optimizer", nan_optimizer, DivergenceError, ["NaN or inf", "put back"]),
    ("optimizer-wrong-shape", "optimizer", reshaping_optimizer, CustomFunctionError, ["another shape", "put back"]),
]
LESSON = {"softmax": model.softmax, "loss_fn": model.cross_entropy, "optimizer": model.sgd}


@pytest.mark.parametrize(("attr", "fn", "error", "words"), [s[1:] for s in STUDENT], ids=[s[0] for s in STUDENT])
def test_broken_student_function(attr, fn, error, words):
    t = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
    for _ in range(3):
        t.train_step()
    before = kept(t)
    setattr(t, attr, fn)
    with pytest.raises(error) as err:
        for _ in range(10):  # Play: step until it stops
            t.step()
    msg = getattr(err.value, "details", str(err.value))
    for w in words:
        assert w in msg, msg
    # the way back, runnable with the trainer alone
    assert ("trainer.use_lesson(" in msg and f"'{LESSON[attr].__name__}'" in msg) or "reset()" in msg, msg
    assert_kept(t, before)  # nothing computed so far is lost, W is what it was
    setattr(t, attr, LESSON[attr])  # what the message says to do next really works
    t.train_step()
    t.train_step()
    assert t.iteration >= before[3] + 1 and bool(torch.isfinite(t.W).all())


# ---- data on disk ----
def copy_raw(tmp: Path, names) -> Path:
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in names:
        shutil.copyfile(FASHION_ROOT / "FashionMNIST" / "raw" / name, raw / name)
    return raw


@needs_fashion
@pytest.mark.parametrize("cut", [0, 3, 1000, 47_040_015], ids=["empty", "3-bytes", "1000-bytes", "one-byte-short"])
def test_truncated_file_on_disk(tmp_path, cut):
    raw = copy_raw(tmp_path, RAW_NAMES)
    with open(raw / "train-images-idx3-ubyte", "r+b") as f:
        f.truncate(cut)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and f"{cut:,} bytes, expected 47,040,016" in msg
    assert "truncated or corrupt" in msg and "Delete it" in msg and "load_dataset('digits')" in msg


@needs_fashion
def test_corrupt_header_on_disk(tmp_path):
    raw = copy_raw(tmp_path, RAW_NAMES)
    size = (raw / "train-labels-idx1-ubyte").stat().st_size
    (raw / "train-labels-idx1-ubyte").write_bytes(b"<html>" + b"\0" * (size - 6))  # a proxy's error page, padded
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    msg = str(err.value)
    assert "not in the MNIST idx format" in msg and "download=True" in msg


@needs_fashion
def test_only_gz_archives_with_download_off_are_unpacked_offline(tmp_path, fashion):
    copy_raw(tmp_path, [f"{n}.gz" for n in RAW_NAMES])
    data = load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert torch.equal(data.y_train, fashion.y_train)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert "does not exist" in msg and "root=" in msg and "load_dataset('digits')" in msg


class _HalfHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; while `cut` is set, the train images stop halfway and the connection drops."""

    cut = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.cut and path.name == "train-images-idx3-ubyte.gz":
            data = data[: len(data) // 2]
            self.close_connection = True
        self.wfile.write(data)


@pytest.fixture
def mirror(tmp_path):
    """A local mirror of the Fashion-MNIST .gz files on 127.0.0.1, set as torchvision's only mirror."""
    import torchvision.datasets as tvd

    serve = tmp_path / "serve"
    serve.mkdir()
    for name in RAW_NAMES:
        os.symlink(FASHION_ROOT / "FashionMNIST" / "raw" / f"{name}.gz", serve / f"{name}.gz")
    handler = functools.partial(_HalfHandler, directory=str(serve))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    saved = tvd.FashionMNIST.mirrors
    tvd.FashionMNIST.mirrors = [f"http://127.0.0.1:{server.server_address[1]}/"]
    _HalfHandler.cut = True
    yield _HalfHandler
    tvd.FashionMNIST.mirrors = saved
    server.shutdown()
    server.server_close()


@needs_fashion
def test_download_cut_off_halfway_then_retry(tmp_path, mirror, fashion):
    root = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=root, download=True)
    msg = str(err.value)
    assert "download failed" in msg and "retry" in msg and "load_dataset('digits')" in msg
    mirror.cut = False  # the network is back: the retry the message suggests must simply work
    data = load_dataset("fashion-mnist", root=root, download=True)
    assert torch.equal(data.x_train, fashion.x_train) and torch.equal(data.y_test, fashion.y_test)


def _drop_root_file_powers():
    # root ignores file permissions (CAP_DAC_OVERRIDE); drop it in the child so "read-only" means read-only
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: takes effect at the exec that follows


def test_read_only_data_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code = ("from softmax_widgets import load_dataset\n"
            f"try:\n    load_dataset('fashion-mnist', root={str(ro)!r}, download=True)\n"
            "except Exception as e:\n    print(type(e).__name__); print(e)\n")
    probe = subprocess.run([sys.executable, "-c", f"open({str(ro / 'probe')!r}, 'w')"],
                           preexec_fn=_drop_root_file_powers, capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this user can write a read-only folder here (root without a droppable capability)")
    r = subprocess.run([sys.executable, "-c", code], preexec_fn=_drop_root_file_powers, capture_output=True,
                       text=True, timeout=120)
    kind, _, msg = r.stdout.partition("\n")
    assert kind == "DatasetUnavailableError", r.stdout + r.stderr
    assert "cannot be written by this user" in msg and "root=" in msg and "load_dataset('digits')" in msg
    ro.chmod(0o755)
