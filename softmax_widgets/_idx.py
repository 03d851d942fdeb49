"""MNIST's idx files read directly: four header fields and raw bytes, plain or gzipped (torchvision's raw/ layout).

Reading them through torchvision imported it (and torch._dynamo, torchvision.models): about 1 s and 170 MB of a
student's kernel, to parse a 16-byte header. torchvision is imported only to download (data.py).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import torch

_UBYTE = 0x08  # the idx type code of unsigned bytes: every MNIST-style image and label file
_CHUNK = 1 << 22  # gzip's readinto copies through a buffer of the size asked: read in 4 MB steps, not 47 MB


class IdxError(ValueError):
    """An idx file that cannot be read; `damaged`: cut off or corrupt (else: another format, e.g. a web page)."""

    def __init__(self, path: Path, reason: str, damaged: bool, expected: int | None = None, cut: bool = False):
        super().__init__(f"{path.name}: {reason}")
        self.path, self.reason, self.damaged = path, reason, damaged
        self.expected = expected  # the size its header promises, in bytes (None: unknown, or a .gz)
        self.cut = cut  # it ends before its header does, so only the size it should have is known (data.py)


def read_idx(path: Path, unpack_to: Path | None = None) -> torch.Tensor:
    """The file as a uint8 tensor shaped by its header, read straight into the tensor's memory (no copy).

    `unpack_to`: where a .gz read is also written unpacked (as torchvision did), so the next start-up skips the
    decompression (about 0.3 s for the train images); skipped where the folder is read-only.
    """
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb", buffering=0)) as f:
            head = _read_exactly(f, 4)
            if len(head) < 4 or head[0] or head[1] or head[2] != _UBYTE or not 1 <= head[3] <= 4:
                raise IdxError(path, f"starts with {head[:4]!r}, not an idx header of bytes (00 00 08 ndim)",
                               damaged=len(head) < 4, cut=len(head) < 4)
            dims = _read_exactly(f, 4 * head[3])
            if len(dims) < 4 * head[3]:
                raise IdxError(path, "ends inside its header", damaged=True, cut=True)
            shape = [int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4)]
            buffer = bytearray(math.prod(shape))
            got = _fill(f, memoryview(buffer))
            if got < len(buffer) or f.read(1):
                raise IdxError(path, f"holds {'fewer' if got < len(buffer) else 'more'} bytes than its header's "
                               f"{' x '.join(map(str, shape))}", damaged=True,
                               expected=None if path.suffix == ".gz" else 4 + len(dims) + len(buffer))
    except (OSError, EOFError, zlib.error) as err:  # a cut-off .gz, a bad CRC, an unreadable file
        if isinstance(err, FileNotFoundError):
            raise
        raise IdxError(path, f"{type(err).__name__}: {err}", damaged=True) from err
    if unpack_to is not None:
        _write(unpack_to, head + dims, buffer)
    if not buffer:
        return torch.empty(shape, dtype=torch.uint8)
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(shape)


def _read_exactly(f, n: int) -> bytes:
    data = b""
    while len(data) < n and (more := f.read(n - len(data))):
        data += more
    return data


def _fill(f, view: memoryview) -> int:
    got = 0
    while got < len(view) and (n := f.readinto(view[got:got + _CHUNK])):
        got += n
    return got


def _write(target: Path, header: bytes, body: bytearray) -> None:
    """The plain file, through a .part file so a cut-off write is never taken for it; nothing where we may not."""
    part = target.with_name(target.name + ".part")
    try:
        with open(part, "wb") as out:
            out.write(header)
            out.write(body)
        os.replace(part, target)
    except OSError:  # a read-only or full folder: the .gz is read again next time, which works, only slower
        pass
    finally:
        try:
            part.unlink(missing_ok=True)
        except OSError:
            pass
