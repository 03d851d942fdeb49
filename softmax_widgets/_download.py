"""Fetching a data set's .gz files: a progress bar while it comes, and no network told in about 2 s.

Nothing is printed before a server answers, so offline the only line a student sees is the one saying so.
"""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.request
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlsplit

CONNECT_TIMEOUT = 2.0  # name lookup + connect + the server's first answer; past this we call it offline
READ_TIMEOUT = 30.0  # a stall this long in the middle of a file is a dead connection
_HEADERS = {"User-Agent": "pytorch/vision"}  # what torchvision sends: some mirrors refuse Python's default


def fetch(source, raw: Path) -> None:
    """Download each `(file, md5)` of `source.resources` from the first of `source.mirrors` that answers.

    `source` is a torchvision dataset class: its own list of files, checksums and mirrors, so tests can
    point `mirrors` at a local server. Files already there with the right checksum are kept.
    """
    raw.mkdir(parents=True, exist_ok=True)
    missing = [(name, md5) for name, md5 in source.resources if not ((raw / name).exists() and _md5(raw / name) == md5)]
    # said once a server has answered, never before: offline, a "Downloading ..." printed while the network is
    # asked would stay standing above the failure in a notebook (a terminal could overwrite it; an output cannot)
    announce = _Once(f"Downloading {len(missing)} file{'s' * (len(missing) > 1)} into {raw} (only this once)")
    for filename, md5 in missing:
        target = raw / filename
        failures = []
        for mirror in source.mirrors:
            try:
                _download(f"{mirror}{filename}", target, md5, announce)
                break
            except (OSError, ValueError, HTTPException) as err:
                failures.append(f"{_short(err)} from {urlsplit(mirror).netloc}")
        else:  # no mirror had it: stop here, the next file would only wait for the same network
            raise RuntimeError(f"could not download {filename}: {'; '.join(failures)}")


class _Once:
    """A line printed the first time it is called, and never again."""

    def __init__(self, line: str):
        self.line, self.said = line, False

    def __call__(self) -> None:
        if not self.said:
            self.said = True
            print(self.line, flush=True)


def _download(url: str, target: Path, md5: str, announce=lambda: None) -> None:
    """Write `url` to `target` through a `.part` file, so a cut-off download is never taken for the file.

    `announce()` is called once the server has answered, before the first byte is written.
    """
    part = target.with_name(target.name + ".part")
    try:
        with _open(url) as response:
            announce()
            total = int(response.headers.get("Content-Length") or 0) or None
            digest, size = hashlib.md5(), 0
            with open(part, "wb") as out, _progress(total, target.name) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if total is not None and size != total:
            raise OSError(f"the connection closed after {size:,} of {total:,} bytes")
        if digest.hexdigest() != md5:
            raise ValueError(f"{target.name} arrived damaged (its checksum is wrong)")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def _open(url: str):
    """urlopen, given up after CONNECT_TIMEOUT s: a name lookup ignores socket timeouts, a waiting thread does not."""
    box: dict = {}
    finished, abandoned = threading.Event(), threading.Event()

    def work():
        try:
            # a fresh opener reads the proxy variables (http_proxy, ...) now, not at the process's first download
            box["response"] = urllib.request.build_opener().open(urllib.request.Request(url, headers=_HEADERS),
                                                                 timeout=READ_TIMEOUT)
        except BaseException as err:  # handed to the caller below
            box["error"] = err
        finally:
            finished.set()
            if abandoned.is_set() and "response" in box:  # it answered after we gave up: nobody reads it
                box["response"].close()

    threading.Thread(target=work, name="softmax-widgets-download", daemon=True).start()
    if not finished.wait(CONNECT_TIMEOUT):
        abandoned.set()
        if finished.is_set() and "response" in box:
            box["response"].close()
        raise TimeoutError(f"no answer within {CONNECT_TIMEOUT:g} s (no network?)")
    if "error" in box:
        raise box["error"]
    return box["response"]


def _progress(total: int | None, name: str):
    """A bar per file: tqdm.auto draws a progress widget in a notebook and text in a terminal."""
    from tqdm.auto import tqdm  # only when downloading: the notebook variant loads ipywidgets

    return tqdm(total=total, desc=f"downloading {name}", unit="B", unit_scale=True, unit_divisor=1024,
                mininterval=0.25, disable=False)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"[:160]
