"""The real download code path: torchvision fetches the .gz files from a server on 127.0.0.1."""

import functools
import http.server
import shutil
import threading

import pytest
import torch

from softmax_widgets import load_dataset
from tests.conftest import FASHION_ROOT, needs_fashion


@pytest.fixture
def mirror(tmp_path):
    """Serve the four .gz files of the real Fashion-MNIST over HTTP, as a mirror would."""
    served = tmp_path / "served"
    served.mkdir()
    for f in (FASHION_ROOT / "FashionMNIST" / "raw").glob("*.gz"):
        shutil.copy(f, served / f.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@needs_fashion
def test_download_into_an_empty_root(tmp_path, mirror, monkeypatch, fashion):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", [mirror])
    root = tmp_path / "cache"
    data = load_dataset("fashion-mnist", root=root, download=True)
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()
    assert torch.equal(data.x_test, fashion.x_test) and torch.equal(data.y_train, fashion.y_train)
    # a second load finds the files and never asks the mirror again
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    assert load_dataset("fashion-mnist", root=root, download=True).x_train.shape == (60000, 784)
