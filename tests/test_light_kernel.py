"""The light kernel: uint8 images converted per batch give the float32 path's numbers bit for bit; the idx files
are read without torchvision (plain or .gz), and every broken file is named."""

from __future__ import annotations

import copy
import gzip
import os
import pickle
import shutil
import subprocess
import sys

import pytest
import torch

from softmax_widgets import DatasetUnavailableError, Trainer, load_dataset
from softmax_widgets._idx import IdxError, read_idx
from softmax_widgets.data import Dataset, as_float
from softmax_widgets.evaluation import CHUNK, evaluate_test_set, logits_on_test_set
from tests.conftest import FASHION_ROOT, REPO, needs_fashion

BUNDLED = REPO / "softmax_widgets" / "datasets" / "fashion-mnist-small"
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def as_float32_dataset(data: Dataset) -> Dataset:
    """The same data held as today's float32 tensors (what the Trainer read before the light kernel)."""
    return Dataset(data.name, data.x_train.clone(), data.y_train, data.x_test.clone(), data.y_test,
                   list(data.classes), data.image_shape)


def test_the_images_are_held_as_uint8_and_read_as_float32_in_0_1():
    small = load_dataset("fashion-mnist-small")
    assert small.pixels_train.dtype == torch.uint8 and small.pixels_train.shape == (6000, 784)
    x = small.x_train
    assert x.dtype == torch.float32 and x.shape == (6000, 784) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
    assert torch.equal(x, small.pixels_train.float() / 255)  # what ToTensor does: a division, not * (1/255)
    assert small.x_train is x  # kept while held: reading it twice converts once
    copied = pickle.loads(pickle.dumps(small))  # the held copy is a weak reference: not pickled
    assert torch.equal(copied.x_train, x) and torch.equal(copy.deepcopy(small).pixels_test, small.pixels_test)
    assert torch.equal(small.test_images([3, 1]), small.x_test[[3, 1]])


@needs_fashion
def test_pixels_equal_torchvision_to_tensor_on_the_uint8_path(fashion):
    """The Trainer's batch (uint8 converted as drawn) is bit for bit the lesson's per-image ToTensor."""
    torchvision = pytest.importorskip("torchvision", reason="the oracle only: the kit reads the files without it")
    import torchvision.transforms as T

    ds = torchvision.datasets.FashionMNIST(str(FASHION_ROOT), train=True, download=False, transform=T.ToTensor())
    t = Trainer(fashion)
    idx = torch.tensor([0, 1234, 59999])
    X, y = t.batch(idx)
    for row, i in enumerate(idx.tolist()):
        img, label = ds[i]
        assert torch.equal(img.view(-1), X[row]) and label == int(y[row])


@pytest.mark.parametrize("steps", [60])
def test_training_on_uint8_equals_training_on_float32_bit_for_bit(steps):
    """The same seed on the same data, held as uint8 and as float32: the same W, history and evaluation."""
    small = load_dataset("fashion-mnist-small")
    light, heavy = Trainer(small, seed=3), Trainer(as_float32_dataset(small), seed=3)
    assert heavy.pixels_train.dtype == torch.float32
    for _ in range(steps):  # crosses an epoch (24 batches of 256): the epoch's evaluate() too
        light.train_step()
        heavy.train_step()
        assert torch.equal(light.X, heavy.X)
    assert torch.equal(light.W, heavy.W) and torch.equal(light.b, heavy.b)
    assert light.history == heavy.history and light.history.test_acc
    assert light.evaluate() == heavy.evaluate()
    a, b = evaluate_test_set(light), evaluate_test_set(heavy)
    assert torch.equal(a.probs, b.probs) and torch.equal(a.confusion, b.confusion)


@needs_fashion
def test_evaluation_by_chunks_is_one_matmul_over_the_test_set(fashion):
    t = Trainer(fashion)
    for _ in range(20):
        t.train_step()
    assert len(fashion.y_test) > 4 * CHUNK  # several chunks and a remainder
    whole = torch.addmm(t.b.detach(), fashion.x_test, t.W.detach())
    assert torch.equal(logits_on_test_set(t), whole)
    assert t.evaluate() == float((whole.argmax(1) == fashion.y_test).float().mean())


def raw_folder(tmp_path, gz: bool = True):
    """The bundled 6,000-image subset laid out as torchvision's FashionMNIST/raw (the idx format itself)."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in NAMES:
        if gz:
            shutil.copyfile(BUNDLED / f"{name}.gz", raw / f"{name}.gz")
        else:
            (raw / name).write_bytes(gzip.decompress((BUNDLED / f"{name}.gz").read_bytes()))
    return raw


def test_gz_files_are_read_directly_and_unpacked_beside_them_once(tmp_path):
    raw = raw_folder(tmp_path)
    data = load_dataset("fashion-mnist", root=tmp_path, download=False)
    small = load_dataset("fashion-mnist-small")
    assert torch.equal(data.pixels_train, small.pixels_train) and torch.equal(data.y_test, small.y_test)
    for name in NAMES:  # the next start-up reads the plain files: no decompression
        assert (raw / name).read_bytes() == gzip.decompress((raw / f"{name}.gz").read_bytes())
    assert not list(raw.glob("*.part"))
    again = load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert torch.equal(again.pixels_test, data.pixels_test)
    assert torch.equal(read_idx(raw / NAMES[0]), read_idx(raw / f"{NAMES[0]}.gz"))


def test_a_cut_off_gz_is_named_as_truncated(tmp_path):
    raw = raw_folder(tmp_path)
    whole = (raw / f"{NAMES[0]}.gz").read_bytes()
    (raw / f"{NAMES[0]}.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    msg = str(err.value)
    assert f"{NAMES[0]}.gz" in msg and "truncated or corrupt" in msg and "Delete it" in msg, msg
    assert not (raw / NAMES[0]).exists()  # nothing half-written is left to be taken for the file


@pytest.mark.parametrize("damage, says", [
    (lambda b: b"<html>" + b[6:], "not in the MNIST idx format"),  # a proxy's page, the same size
    (lambda b: b[:16] + b[16:-784], "truncated or corrupt"),  # one image short of its header
    (lambda b: b + b"\0", "truncated or corrupt"),  # a byte too many
    (lambda b: b[:10], "truncated or corrupt"),  # cut inside the header
])
def test_a_damaged_plain_file_is_named(tmp_path, damage, says):
    raw = raw_folder(tmp_path, gz=False)
    (raw / NAMES[2]).write_bytes(damage((raw / NAMES[2]).read_bytes()))
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert NAMES[2] in str(err.value) and says in str(err.value), str(err.value)


def test_labels_that_do_not_match_the_images_are_refused(tmp_path):
    raw = raw_folder(tmp_path, gz=False)
    labels = (raw / NAMES[1]).read_bytes()
    (raw / NAMES[1]).write_bytes(labels[:4] + (5999).to_bytes(4, "big") + labels[8:-1])
    with pytest.raises(DatasetUnavailableError, match="5,999 labels for 6,000 images"):
        load_dataset("fashion-mnist", root=tmp_path, download=False)


def test_read_idx_refuses_what_is_not_idx_and_keeps_the_reason(tmp_path):
    path = tmp_path / "page"
    path.write_bytes(b"<!doctype html>")
    with pytest.raises(IdxError, match="not an idx header") as err:
        read_idx(path)
    assert not err.value.damaged and isinstance(err.value, ValueError)


# the core on files already on disk, in a fresh process: what a student's kernel imports
CORE = """
import sys
{block}
from softmax_widgets import Trainer, load_dataset
t = Trainer(load_dataset("fashion-mnist", root=sys.argv[1], download=False))
for _ in range(3):
    t.train_step()
print(t.evaluate(), "torchvision" in sys.modules, sorted(m for m in sys.modules if m.startswith("torchvision")))
"""
NO_TORCHVISION = """
class _Absent:  # an environment without torchvision (the CPU build of torch has none beside it here)
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, _Absent())
"""


def run_core(root, block: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CORE.format(block=block), str(root)], capture_output=True,
                          text=True, env=os.environ.copy(), cwd=REPO, timeout=300)


def test_reading_files_on_disk_imports_no_torchvision(tmp_path):
    raw_folder(tmp_path)
    out = run_core(tmp_path)
    assert out.returncode == 0, out.stderr
    acc, imported, modules = out.stdout.split(" ", 2)
    assert imported == "False" and modules.strip() == "[]", out.stdout
    assert 0.0 < float(acc) <= 1.0


@needs_fashion
def test_the_full_set_on_disk_trains_with_no_torchvision_installed():
    out = run_core(FASHION_ROOT, NO_TORCHVISION)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" ")[1] == "False"


def test_downloading_without_torchvision_says_what_to_install(tmp_path):
    code = NO_TORCHVISION + (
        "from softmax_widgets import load_dataset\n"
        f"try:\n    load_dataset('fashion-mnist', root={str(tmp_path)!r}, download=True)\n"
        "except ValueError as e:\n    print(type(e).__name__); print(e)\n")
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True,
                         env=os.environ.copy(), cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("DatasetUnavailableError"), out.stdout
    for part in ("needs torchvision", "pip install torchvision", "train-images-idx3-ubyte", "fashion-mnist-small"):
        assert part in out.stdout, out.stdout


def test_a_held_float_copy_is_not_what_the_trainer_reads():
    small = load_dataset("fashion-mnist-small")
    x = small.x_train
    x[0] = 7.0  # a student's experiment on the float copy
    t = Trainer(small)
    assert float(as_float(t.pixels_train[0]).max()) <= 1.0
    del x
    assert float(small.x_train.max()) == 1.0  # a fresh conversion once nobody holds the old one
