"""Datasets held as one tensor each (uint8 pixels), so a batch is an index, not a PIL transform."""

from __future__ import annotations

import errno
import os
import weakref
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

import torch

from . import _download, _idx
from .messages import say

__all__ = ["DATASETS", "EXPECTED", "OFFLINE_DATASET", "Dataset", "DatasetUnavailableError", "OfflineNote",
           "as_float", "default_root", "expected_accuracy", "load_dataset", "load_or_offline"]

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
DIGIT_CLASSES = [str(i) for i in range(10)]

# name -> (torchvision class name, class names); None: shipped in the package (softmax_widgets/datasets/)
DATASETS: dict[str, tuple[str | None, list[str]]] = {
    "fashion-mnist": ("FashionMNIST", FASHION_CLASSES),
    "mnist": ("MNIST", DIGIT_CLASSES),
    "kmnist": ("KMNIST", KMNIST_CLASSES),
    "digits": (None, DIGIT_CLASSES),
    "fashion-mnist-small": (None, FASHION_CLASSES),
}
# the same lesson with no network: 6,000 + 1,000 of the real images, so W still turns into clothes
OFFLINE_DATASET = "fashion-mnist-small"
# The lesson's loop (lr 0.1, batch 256, W ~ N(0, 0.01²)), test accuracy after 1, 3 and 5 epochs: seed 0, and the
# spread over seeds 0-5 (measured with the Trainer, torch 2.14 CPU). The book's 0.82 is the full set's; the
# 6,000-image subset sees a tenth of the images per epoch, so it lags (0.65 after one epoch is right, not broken).
EXPECTED: dict[str, dict[int, tuple[float, float, float]]] = {
    "fashion-mnist": {1: (0.770, 0.757, 0.794), 3: (0.819, 0.806, 0.819), 5: (0.823, 0.823, 0.825)},
    "fashion-mnist-small": {1: (0.649, 0.631, 0.677), 3: (0.725, 0.713, 0.757), 5: (0.761, 0.741, 0.775)},
}
_RAW_FILES = [
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
]
ENV_VAR = "SOFTMAX_WIDGETS_DATA"


class DatasetUnavailableError(ValueError):
    """The dataset's files are not on disk and could not be downloaded."""

    def __init__(self, message: str, name: str = "", folder: Path | None = None):
        super().__init__(message)
        self.name, self.folder = name, folder

    @property
    def summary(self) -> str:
        """One sentence for a command line: what is missing and how to fix it."""
        return (f"{self.name} is not in {self.folder} and {say('data.not_downloaded')}: set {ENV_VAR} (or pass "
                f"root=) to the folder that holds {self.folder.parent.name if self.folder else '<Name>'}/raw/")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test splits: `x_train` (N, D) float32 in [0, 1] and `y_train` (N,) int64; `x_test`, `y_test`.

    The images are held as stored (`pixels_train`: uint8 for the idx sets, a quarter of float32's 188 MB), and
    `x_train` is made from them when read: pixels / 255, what ToTensor gives, bit for bit. It is kept while you
    hold it (so `x = data.x_train` converts once), and a kernel that never reads it never pays for it; the
    Trainer converts each batch as it draws it. A copy: changing it changes nothing the Trainer reads.
    """

    name: str
    pixels_train: torch.Tensor  # (N, D) uint8 (the images times 255) or float32 (the images themselves)
    y_train: torch.Tensor
    pixels_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str] = field(default_factory=list)
    image_shape: tuple[int, int] = (28, 28)
    _held: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def x_train(self) -> torch.Tensor:
        """(N, D) float32 in [0, 1]: the training images, converted now unless you already hold them."""
        return self._as_held("train", self.pixels_train)

    @property
    def x_test(self) -> torch.Tensor:
        """(N, D) float32 in [0, 1]: the test images, converted now unless you already hold them."""
        return self._as_held("test", self.pixels_test)

    def _as_held(self, split: str, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dtype != torch.uint8:
            return pixels
        held = self._held.get(split)
        x = held() if held is not None else None
        if x is None:
            x = as_float(pixels)
            self._held[split] = weakref.ref(x)
        return x

    def __getstate__(self) -> dict:  # pickle and deepcopy: the held float copies are weak references
        return {**self.__dict__, "_held": {}}

    def test_images(self, indices) -> torch.Tensor:
        """(k, D) float32: the test images at `indices`, converting only those (a view showing a few)."""
        return as_float(self.pixels_test[indices])

    @property
    def num_inputs(self) -> int:
        return self.pixels_train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_tensors(cls, x_train, y_train, x_test, y_test, classes, name: str = "own data",
                     image_shape: tuple[int, int] | None = None) -> Dataset:
        """Own data: (N, D) images (uint8 0-255, or float in [0, 1]; (N, H, W) is flattened), int labels from 0,
        and one name per class. Every part is checked here, so a mistake is said before any training starts."""
        def bad(what: str) -> ValueError:
            return ValueError(f"Dataset.from_tensors: {what}. Nothing was made.")

        def images(x, split: str) -> torch.Tensor:
            if not isinstance(x, torch.Tensor):
                try:
                    x = torch.as_tensor(x)
                except (TypeError, ValueError, RuntimeError) as err:
                    raise bad(f"x_{split} must be a tensor of images, got {type(x).__name__}") from err
            if x.dim() == 3:
                x = x.reshape(len(x), -1)
            if x.dim() != 2 or not len(x) or not x.shape[1]:
                raise bad(f"x_{split} must hold (N, D) images (one flattened image per row), got shape "
                          f"{tuple(x.shape)}")
            if x.dtype == torch.uint8:
                return x.contiguous()
            if not x.is_floating_point():
                raise bad(f"x_{split} must be uint8 pixels (0-255) or floats in [0, 1], got {x.dtype}")
            x = x.to(torch.float32).contiguous()
            if not bool(torch.isfinite(x).all()):
                raise bad(f"x_{split} holds NaN or inf")
            if float(x.min()) < 0 or float(x.max()) > 1:
                raise bad(f"x_{split} floats must lie in [0, 1] like ToTensor's (got {float(x.min()):.3g} to "
                          f"{float(x.max()):.3g}): divide pixels by 255, or pass them as uint8")
            return x

        def labels(y, x, split: str) -> torch.Tensor:
            y = torch.as_tensor(y)
            if y.dim() != 1 or len(y) != len(x):
                raise bad(f"y_{split} must hold one label per image of x_{split} ({len(x)}), got shape "
                          f"{tuple(y.shape)}")
            if y.is_floating_point() or y.dtype == torch.bool:
                raise bad(f"y_{split} must hold whole class numbers, got {y.dtype}")
            y = y.to(torch.int64)
            if int(y.min()) < 0 or int(y.max()) >= len(classes):
                raise bad(f"y_{split} labels must be 0 to {len(classes) - 1} (one per class name), got "
                          f"{int(y.min())} to {int(y.max())}")
            return y.contiguous()

        if isinstance(classes, str) or not all(isinstance(c, str) for c in classes) or len(classes) < 2:
            raise bad(f"classes must be a list of at least two class names, got {classes!r:.60}")
        xtr, xte = images(x_train, "train"), images(x_test, "test")
        if xtr.shape[1] != xte.shape[1] or xtr.dtype != xte.dtype:
            raise bad(f"x_train and x_test must be alike: {xtr.shape[1]} vs {xte.shape[1]} values per image, "
                      f"{xtr.dtype} vs {xte.dtype}")
        d = xtr.shape[1]
        if image_shape is None:
            side = round(d ** 0.5)
            image_shape = (side, side) if side * side == d else (1, d)
        if image_shape[0] * image_shape[1] != d:
            raise bad(f"image_shape {image_shape} does not hold {d} values per image")
        return cls(str(name), xtr, labels(y_train, xtr, "train"), xte, labels(y_test, xte, "test"), list(classes),
                   tuple(image_shape))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self.y_train)} train / {len(self.y_test)} test images "
                f"of {self.image_shape[0]}x{self.image_shape[1]}, {self.num_classes} classes)")


def as_float(pixels: torch.Tensor) -> torch.Tensor:
    """Stored pixels as float32 in [0, 1]: uint8 / 255 (what ToTensor does per image, bit for bit); float as is."""
    if pixels.dtype != torch.uint8:
        return pixels
    return pixels.to(torch.float32).div_(255.0)


def default_root() -> Path:
    """`$SOFTMAX_WIDGETS_DATA`, else a per-user cache folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "softmax_widgets"


def load_dataset(name: str = "fashion-mnist", root: str | os.PathLike | None = None,
                 download: bool = True) -> Dataset:
    """Load a dataset by name; `root` holds torchvision's `<Name>/raw/` folders."""
    key = str(name).lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if DATASETS[key][0] is None:
        return _load_bundled(key)
    folder = Path(root).expanduser() if root is not None else default_root()
    tv_name, classes = DATASETS[key]
    raw = folder / tv_name / "raw"
    fetching = download and any(not (raw / n).exists() and not (raw / f"{n}.gz").exists() for n in _RAW_FILES)
    try:
        if fetching:
            _fetch(key, tv_name, raw)
        x_train, y_train, x_test, y_test = (_read(raw, name) for name in _RAW_FILES)
        for images, labels in ((x_train, y_train), (x_test, y_test)):
            if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
                raise _idx.IdxError(raw / _RAW_FILES[1 if images is x_train else 3],
                                    f"{len(labels):,} labels for {len(images):,} images", damaged=True)
    except DatasetUnavailableError:
        raise
    # HTTPException: a cut-off download; RuntimeError: no mirror had a file
    except (RuntimeError, OSError, EOFError, ValueError, HTTPException) as err:
        message = _unavailable_message(key, tv_name, folder, download, err, fetching)
        raise DatasetUnavailableError(message, key, raw) from err
    return Dataset(key, x_train.reshape(len(x_train), -1), y_train.long(), x_test.reshape(len(x_test), -1),
                   y_test.long(), list(classes), tuple(x_train.shape[1:]))


def _read(raw: Path, name: str) -> torch.Tensor:
    """The plain idx file where it is, else its .gz (unpacked beside it on the way, where the folder allows)."""
    plain = raw / name
    if plain.exists() or not (raw / f"{name}.gz").exists():
        return _idx.read_idx(plain)
    return _idx.read_idx(raw / f"{name}.gz", unpack_to=plain)


def _fetch(key: str, tv_name: str, raw: Path) -> None:
    """The missing .gz files, from the mirrors and checksums torchvision keeps: its only use here."""
    try:
        import torchvision.datasets as tvd  # ~1 s and ~170 MB: never when the files are on disk
    except ImportError as err:
        raise DatasetUnavailableError(
            f"{key} is not in {raw}, and downloading it needs torchvision, which is not installed here ({err}). "
            f"Install it (pip install torchvision, the release made for your torch), or put "
            f"{', '.join(_RAW_FILES)} (or their .gz) in {raw}. " + say("data.offline_hint"), key, raw) from err
    # ours, not torchvision's: a progress bar, and no network told in ~2 s
    _download.fetch(getattr(tvd, tv_name), raw)


def _unavailable_message(key: str, tv_name: str, folder: Path, download: bool, err: Exception,
                         fetched: bool = True) -> str:
    raw = folder / tv_name / "raw"
    if not download:
        why = say("data.download_off")
    elif fetched:
        why = f"the download failed ({_short(err)})"
    else:
        why = "download=True fetches only the files that are missing"
    if isinstance(err, PermissionError) or getattr(err, "errno", None) == errno.EROFS:
        return (f"{key} is not available: {raw} cannot be written by this user ({_short(err)}), so the download "
                f"has nowhere to go. Point root= or ${ENV_VAR} at a folder you can write (e.g. ~/data), or ask "
                f"for the files to be put in {raw}. " + say("data.offline_hint"))
    bad = _damaged(err) if isinstance(err, _idx.IdxError) else _bad_sizes(raw)
    if bad:  # the most useful thing to say: which file is broken, and that a fresh copy fixes it
        return (f"{key} is not available: {bad} in {raw} is truncated or corrupt (an interrupted copy or "
                f"download?), and {why}. Delete it and load again with download=True (it is fetched again), "
                "or copy a good one there. " + say("data.offline_hint"))
    if isinstance(err, _idx.IdxError):
        return (f"{key} is not available: the files in {raw} are not in the MNIST idx format ({_short(err)}). "
                "Delete them and load again with download=True, or copy good ones there. " + say("data.offline_hint"))
    where = f"{raw} does not exist" if not raw.exists() else f"no readable files in {raw}"
    return (
        f"{key} is not available: {where} and {why}. "
        f"Expected {', '.join(_RAW_FILES)} (or their .gz). "
        f"Put them there, point root= or ${ENV_VAR} at the folder that holds {tv_name}/raw/, "
        f"connect to the internet and retry, or use the bundled offline subset: "
        f"load_dataset('fashion-mnist-small') (6,000 Fashion-MNIST images; load_dataset('digits') is the 8x8 digits)."
    )


# every torchvision MNIST-style set: 60,000 train / 10,000 test images of 28x28 (idx headers: 16 and 8 bytes)
_RAW_SIZES = {"train-images-idx3-ubyte": 16 + 60000 * 784, "train-labels-idx1-ubyte": 8 + 60000,
              "t10k-images-idx3-ubyte": 16 + 10000 * 784, "t10k-labels-idx1-ubyte": 8 + 10000}


def _damaged(err: _idx.IdxError) -> str:
    """The file the reader found cut off or corrupt, with its size and the size it should have where known."""
    if not err.damaged:
        return ""
    expected = err.expected or (_RAW_SIZES.get(err.path.name) if err.cut and err.path.suffix != ".gz" else None)
    try:
        have = err.path.stat().st_size
    except OSError:
        have = None
    if expected is None or have is None or have == expected:
        return f"{err.path.name} ({err.reason})"
    return f"{err.path.name} ({have:,} bytes, expected {expected:,})"


def _bad_sizes(raw: Path) -> str:
    """Name the unpacked files whose size is wrong, with what it is and what it should be."""
    bad = []
    for name, size in _RAW_SIZES.items():
        try:
            have = (raw / name).stat().st_size
        except OSError:
            continue
        if have != size:
            bad.append(f"{name} ({have:,} bytes, expected {size:,})")
    return ", ".join(bad)


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"[:200]


_BUNDLED_CACHE: dict[str, Dataset] = {}


def _load_bundled(key: str) -> Dataset:
    """A data set shipped in the package: read once per process (they are small and never change)."""
    if key not in _BUNDLED_CACHE:
        from . import _bundled

        if key == "digits":
            _BUNDLED_CACHE[key] = Dataset(key, *_bundled.digits(), list(DIGIT_CLASSES), (8, 8))
        else:
            x_train, y_train, x_test, y_test = _bundled.fashion_small()
            _BUNDLED_CACHE[key] = Dataset(key, x_train.reshape(len(x_train), -1), y_train,
                                          x_test.reshape(len(x_test), -1), y_test,
                                          list(FASHION_CLASSES), (28, 28))
    return _BUNDLED_CACHE[key]


class OfflineNote(str):
    """load_or_offline()'s note: one short line (the string itself, fit for the top of the dashboard), and
    `.details`, the whole story (the folder looked in, why it failed, `root=`) for a tooltip or a print."""

    details: str

    def __new__(cls, line: str, details: str = "") -> OfflineNote:
        note = super().__new__(cls, line)
        note.details = details or line
        return note


def load_or_offline(name: str = "fashion-mnist", root: str | os.PathLike | None = None,
                    download: bool = True) -> tuple[Dataset, str]:
    """load_dataset(), or the bundled Fashion-MNIST subset when the files cannot be had, with a note saying so.

    The note is "" when `name` loaded; else an OfflineNote: one line of about 100 characters (what happened,
    and the variable that brings the full set back), its `.details` the folder, the reason and `root=`.
    """
    try:
        return load_dataset(name, root=root, download=download), ""
    except DatasetUnavailableError as err:
        data = load_dataset(OFFLINE_DATASET)
        tv_name = DATASETS[err.name][0] if err.name in DATASETS else None
        holds = f"{tv_name}/raw/" if tv_name else "the raw/ files"
        line = (f"{err.name} {_what_failed(err, download)}: using a {len(data.y_train):,}-image subset; set "
                f"{ENV_VAR} for the full set.")
        cause = f" ({_short(err.__cause__)})" if download and err.__cause__ is not None else ""
        details = (f"Using the bundled offline subset of Fashion-MNIST ({len(data.y_train):,} training and "
                   f"{len(data.y_test):,} test images): {err.name} is not in {err.folder} and "
                   f"{say('data.not_downloaded') if download else say('data.download_off')}{cause}. "
                   f"For the full set, set {ENV_VAR} (or pass root=) to the folder that holds {holds}, then run "
                   "again.")
        return data, OfflineNote(line, details)


def _what_failed(err: DatasetUnavailableError, download: bool) -> str:
    """A few words on why the full set is not here, from the error load_dataset() raised."""
    cause = err.__cause__
    if isinstance(cause, PermissionError) or getattr(cause, "errno", None) == errno.EROFS:
        return "has no folder it may write to"
    if isinstance(cause, _idx.IdxError) or (err.folder is not None and _bad_sizes(err.folder)):
        return "has damaged files"
    return say("data.not_downloaded") if download else "is not on disk"


def expected_accuracy(name: str) -> str:
    """One line for a notebook: the test accuracy the lesson reaches on data set `name` (EXPECTED)."""
    key = str(name).lower().replace("_", "-")
    if key not in EXPECTED:
        return (f"No reference numbers for {key}: the book's 0.82 test accuracy after 5 epochs is for "
                "fashion-mnist.")
    size = "60,000" if key == "fashion-mnist" else f"{len(load_dataset(key).y_train):,}"
    (first, (acc, *_)), *later = EXPECTED[key].items()
    steps = f"{acc:.2f} after {first} epoch, " + ", ".join(f"{a:.2f} after {e}" for e, (a, *_) in later)
    spread = max(max(hi - a, a - lo) for a, lo, hi in EXPECTED[key].values())
    tail = "as in the book" if key == "fashion-mnist" else "the book's 0.82 needs all 60,000 images"
    return f"Expected on {key} ({size} training images): test accuracy ≈ {steps}, ±{spread:.2f} by seed ({tail})."
