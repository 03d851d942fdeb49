"""Datasets: shapes, ranges, names, the offline set and the teachable errors."""

import os
import subprocess
import sys

import pytest
import torch

from softmax_widgets import DatasetUnavailableError, load_dataset
from softmax_widgets.data import ENV_VAR, FASHION_CLASSES, default_root
from tests.conftest import FASHION_ROOT, needs_fashion


def test_digits_offline_split(digits):
    assert digits.name == "digits" and digits.image_shape == (8, 8)
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert 0.0 <= float(digits.x_train.min()) and float(digits.x_train.max()) <= 1.0
    assert digits.classes == [str(i) for i in range(10)]
    again = load_dataset("digits")
    assert torch.equal(again.y_test, digits.y_test)  # a fixed-seed split


@needs_fashion
def test_fashion_mnist_as_float_tensors(fashion):
    assert fashion.x_train.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    assert fashion.x_train.dtype == torch.float32 and fashion.y_train.dtype == torch.int64
    assert float(fashion.x_train.min()) == 0.0 and float(fashion.x_train.max()) == 1.0
    assert fashion.classes == FASHION_CLASSES and fashion.image_shape == (28, 28)
    assert sorted(fashion.y_train.unique().tolist()) == list(range(10))


@needs_fashion
def test_pixels_equal_torchvision_to_tensor(fashion):
    """Converting once equals the lesson's per-image ToTensor."""
    import torchvision
    import torchvision.transforms as T

    ds = torchvision.datasets.FashionMNIST(str(FASHION_ROOT), train=True, download=False, transform=T.ToTensor())
    for i in (0, 1234, 59999):
        img, label = ds[i]
        assert torch.equal(img.view(-1), fashion.x_train[i]) and label == int(fashion.y_train[i])


@needs_fashion
def test_env_var_is_the_default_root(monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(FASHION_ROOT))
    assert default_root() == FASHION_ROOT
    assert load_dataset("fashion-mnist", download=False).x_test.shape == (10000, 784)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*fashion-mnist, mnist, kmnist, digits"):
        load_dataset("cifar")


def test_missing_files_without_download_say_where_and_what(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    msg = str(info.value)
    for part in (str(tmp_path / "FashionMNIST" / "raw"), "train-images-idx3-ubyte", ENV_VAR, "digits"):
        assert part in msg
    assert isinstance(info.value, ValueError)


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    """No network: every mirror refuses; the message is ours, not a torchvision traceback."""
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # port 9: nothing listens
    with pytest.raises(DatasetUnavailableError, match="the download failed") as info:
        load_dataset("fashion-mnist", root=tmp_path, download=True)
    assert "digits" in str(info.value) and ENV_VAR in str(info.value)


def test_import_loads_no_widget_library():
    code = ("import sys, softmax_widgets; bad = [m for m in ('ipywidgets', 'bqplot') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stdout + out.stderr
