"""The kernel's side of a state file's upload (front_end.Upload, ui/upload.js): what the page sends arrives as comm
messages, as from the browser. A file over the cap is refused by its size in the browser, which sends only the
name and size: the reason is said on the export tab and the run is unchanged; a file under it comes in pieces and
loads; pieces that do not fit together, or a page that skipped the check, are refused and nothing is held.
tests/browser/test_upload_browser.py does the same in a real JupyterLab."""

from __future__ import annotations

import io

import pytest
import torch

from softmax_widgets import Trainer
from softmax_widgets.classroom import UPLOAD_LIMIT_BYTES
from softmax_widgets.ui.front_end import CHUNK_BYTES, Upload, size_words
from softmax_widgets.ui.panes.export import ExportPane

GB = 2**30


def message(upload: Upload, content: dict, buffers: list[bytes] | None = None) -> None:
    """One custom message from the page, through the widget's comm handler."""
    upload._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": [memoryview(b) for b in buffers or []]})


def send_as_the_page(upload: Upload, name: str, data: bytes, size: int | None = None) -> None:
    """What upload.js sends for a chosen file of `size` bytes (len(data) unless given): over the limit only its
    name and size; under it, its bytes in pieces of `upload.chunk` (one empty piece for an empty file)."""
    size = len(data) if size is None else size
    if size > upload.limit:
        message(upload, {"event": "too_big", "name": name, "size": size})
        return
    for offset in range(0, max(size, 1), upload.chunk):
        message(upload, {"event": "piece", "upload": "u1", "offset": offset, "name": name, "size": size},
                [data[offset:offset + upload.chunk]])


@pytest.fixture
def pane(digits):
    t = Trainer(digits, seed=0)
    for _ in range(3):
        t.train_step()
    return ExportPane(t, {}, browser_download=False)


def state_bytes(t: Trainer) -> bytes:
    buf = io.BytesIO()
    t.save(buf)
    return buf.getvalue()


def test_sizes_read_as_a_student_reads_them():
    assert [size_words(n) for n in (12, 900 * 2**10, 18 * 2**20, 5 * 2**20 + 2**19, GB, 3 * GB // 2)] == [
        "12 bytes", "900 kB", "18 MB", "5.5 MB", "1.0 GB", "1.5 GB"]


def test_the_page_is_told_the_cap_and_a_piece_size_far_under_the_websocket_limit(pane):
    up = pane.upload
    assert up.limit == UPLOAD_LIMIT_BYTES and up.accept == ".pt" and up.label == "load state file (.pt)"
    assert up.chunk == CHUNK_BYTES <= 2**20  # tornado's default websocket_max_message_size is 10 MiB
    assert up.get_state()["limit"] == UPLOAD_LIMIT_BYTES  # synced: the page reads it


def test_a_state_file_in_many_pieces_loads_and_undo_is_offered(pane):
    t = pane.trainer
    data, W = state_bytes(t), t.W.detach().clone()
    for _ in range(4):
        t.train_step()
    pane.upload.chunk = 1000  # many pieces, as a file of several MB would be
    assert len(data) > 5 * pane.upload.chunk
    send_as_the_page(pane.upload, "lesson.pt", data)
    assert t.iteration == 3 and torch.equal(t.W, W)
    assert "loaded lesson.pt" in pane.status.value and "undo" in pane.status.value


def test_a_1_gb_file_is_refused_by_its_size_with_what_to_do_and_nothing_changes(pane):
    t = pane.trainer
    W = t.W.detach().clone()
    said = []
    pane.upload.refused = lambda why: (said.append(why), pane.refuse(why))
    send_as_the_page(pane.upload, "lesson.pt", b"", size=GB)  # the page sends no byte of it
    assert [s.id for s in said] == ["upload.too_big"]
    text = str(said[0])
    assert text.startswith("lesson.pt is 1.0 GB; a state file here can be at most 16 MB: it was not sent")
    assert "trainer.save(path)" in text  # what to do instead
    assert "#b00020" in pane.status.value and "lesson.pt is 1.0 GB" in pane.status.value
    assert t.iteration == 3 and torch.equal(t.W, W)
    pane.upload.refused = pane.refuse
    send_as_the_page(pane.upload, "lesson.pt", state_bytes(t))  # and the next upload works
    assert "loaded lesson.pt" in pane.status.value


def test_a_page_that_skipped_the_check_is_refused_at_its_first_piece_and_nothing_is_held(pane):
    up, said = pane.upload, []
    up.refused = said.append
    big = 2 * UPLOAD_LIMIT_BYTES
    message(up, {"event": "piece", "upload": "u9", "offset": 0, "name": "huge.pt", "size": big}, [b"\0" * 1000])
    message(up, {"event": "piece", "upload": "u9", "offset": 1000, "name": "huge.pt", "size": big}, [b"\0" * 1000])
    assert [s.id for s in said] == ["upload.too_big"] and len(up._data) == 0
    assert pane.trainer.iteration == 3


def test_pieces_that_do_not_fit_together_are_refused_and_a_new_upload_starts_clean(pane):
    up, said = pane.upload, []
    up.refused = said.append
    up.chunk = 1000
    data = state_bytes(pane.trainer)
    message(up, {"event": "piece", "upload": "a", "offset": 0, "name": "x.pt", "size": len(data)}, [data[:1000]])
    message(up, {"event": "piece", "upload": "a", "offset": 2000, "name": "x.pt", "size": len(data)},
            [data[2000:3000]])  # a piece missing
    assert [s.id for s in said] == ["upload.broken"] and len(up._data) == 0
    message(up, {"event": "piece", "upload": "b", "offset": 0, "name": "y.pt", "size": 10}, [b"0123456789ab"])
    assert [s.id for s in said] == ["upload.broken"] * 2  # more bytes than the size it said
    message(up, {"event": "piece", "upload": "a", "offset": 3000, "name": "x.pt", "size": len(data)},
            [data[3000:4000]])  # a late piece of the dropped upload: ignored
    assert len(said) == 2
    message(up, {"event": "piece", "upload": 1, "offset": 0, "name": "z.pt", "size": "many"}, [b""])  # not sizes
    message(up, "not a dict")
    assert len(said) == 2 and pane.trainer.iteration == 3
    up.refused = pane.refuse
    send_as_the_page(up, "lesson.pt", data)
    assert "loaded lesson.pt" in pane.status.value


def test_an_empty_or_unreadable_file_is_said_in_words(pane):
    send_as_the_page(pane.upload, "empty.pt", b"")
    assert "empty.pt is not a softmax_widgets state file: it is empty" in pane.status.value
    message(pane.upload, {"event": "unreadable", "name": "net.pt", "size": 5, "error": "NotReadableError"})
    assert "The browser could not read net.pt (NotReadableError): nothing was sent" in pane.status.value
    assert pane.trainer.iteration == 3


def test_persist_still_refuses_a_file_over_16_mb_that_reaches_the_kernel(pane):
    """The kernel-side guard behind the browser's: a page whose limit was raised still meets persist.read's."""
    pane.upload.limit = 4 * UPLOAD_LIMIT_BYTES
    pane.upload.chunk = 8 * 2**20
    send_as_the_page(pane.upload, "big.pt", b"\0" * (UPLOAD_LIMIT_BYTES + 2**20))
    assert "big.pt is 17 MB: too big for a state file of this lesson" in pane.status.value
    assert pane.trainer.iteration == 3
