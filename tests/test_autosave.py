"""The app page's autosave (persist.Autosave) and what the page opens on (launch.app_dashboard): a reload of the
page continues the run where it was and says so; a broken autosave falls back to the state file, in words."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from softmax_widgets import Trainer, launch, load_dataset
from softmax_widgets.persist import Autosave


@pytest.fixture
def digits():
    return load_dataset("digits")


def test_autosave_waits_for_the_loop_and_writes_the_run_whole(digits, tmp_path):
    t = Trainer(digits, batch_size=64, seed=4)
    path = tmp_path / "autosave.pt"
    loop = asyncio.new_event_loop()
    try:
        save = Autosave(t, path, every_s=0.0, loop=loop)
        t.train_step()
        t.next_batch()
        # the change is saved from the loop (between steps), never inside the phase that emitted it
        assert not path.exists()
        loop.run_until_complete(asyncio.sleep(0.01))
        assert save.saves == 1 and save.error is None
        back = Trainer.load(path)
        assert (back.iteration, back.next_phase.value, back.batches_drawn) == (1, "forward", 2)
        assert back.W.detach().equal(t.W.detach())
        assert [p.name for p in tmp_path.iterdir()] == ["autosave.pt"]  # no temporary file left behind
        save.close()
        t.forward()
        loop.run_until_complete(asyncio.sleep(0.01))
        assert save.saves == 1  # closed: no longer follows the run
    finally:
        loop.close()


def test_a_failed_autosave_never_stops_the_run(digits, tmp_path):
    t = Trainer(digits, batch_size=64, seed=4)
    save = Autosave(t, tmp_path / "gone" / "autosave.pt", every_s=0.0)  # its folder does not exist
    t.train_step()
    save.flush()
    assert save.saves == 0 and "does not exist" in str(save.error)  # torch.save says it as a RuntimeError
    assert t.iteration == 1
    save.close()


def test_the_autosave_is_written_as_the_process_exits(tmp_path):
    """Voila shuts a reloaded page's kernel down: the last change (seconds before, no loop turn since) is saved
    as the process exits."""
    path = tmp_path / "autosave.pt"
    code = ("from softmax_widgets import Trainer, load_dataset\nfrom softmax_widgets.persist import Autosave\n"
            "t = Trainer(load_dataset('digits'), batch_size=64, seed=4)\n"
            f"a = Autosave(t, {str(path)!r}, every_s=3600)\n"
            "for _ in range(3):\n    t.train_step()\nt.next_batch()\nprint(a.saves)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "0"  # nothing saved while it ran (no loop, an hour between saves)
    back = Trainer.load(path)
    assert (back.iteration, back.next_phase.value) == (3, "forward")


REOPENED = re.compile(r"^reopened iteration 3 \(epoch 1\) from this app's autosave of \d\d:\d\d:\d\d, where the page "
                      r"was before it was reloaded; lesson\.pt itself is unchanged\. Press zero_grad \(the lit "
                      r"button\) or Step to go on\.$")


def _state(data, path, iterations: int, forward: bool = False) -> None:
    t = Trainer(data, batch_size=64, seed=4)
    for _ in range(iterations):
        t.train_step()
    if forward:
        t.next_batch()
        t.forward()
    t.save(path)


def test_the_app_page_reopens_its_autosave_and_says_so(digits, tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    _state(digits, tmp_path / "lesson.pt", 1)
    _state(digits, tmp_path / "autosave.pt", 3, forward=True)  # where the page was before the reload
    monkeypatch.setenv(launch.STATE_ENV, str(tmp_path / "lesson.pt"))
    monkeypatch.setenv(launch.AUTOSAVE_ENV, str(tmp_path / "autosave.pt"))
    dash = launch.app_dashboard()
    try:
        assert (dash.trainer.iteration, dash.trainer.next_phase.value) == (3, "zero_grad")
        assert REOPENED.match(dash.status), dash.status
        assert isinstance(dash.autosave, Autosave) and dash.autosave.path == tmp_path / "autosave.pt"
    finally:
        dash.autosave.close()
    assert Trainer.load(tmp_path / "lesson.pt").iteration == 1  # the prepared run itself is never written


def test_a_broken_autosave_falls_back_to_the_state_and_says_why(digits, tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    _state(digits, tmp_path / "lesson.pt", 2)
    (tmp_path / "autosave.pt").write_bytes(b"PK\x03\x04 cut short")
    monkeypatch.setenv(launch.STATE_ENV, str(tmp_path / "lesson.pt"))
    monkeypatch.setenv(launch.AUTOSAVE_ENV, str(tmp_path / "autosave.pt"))
    dash = launch.app_dashboard()
    try:
        assert dash.trainer.iteration == 2
        assert dash.status.startswith("this app's autosave could not be reopened (") and dash.status.endswith(
            "; loaded lesson.pt: epoch 1, iteration 2. Press next_batch (the lit button) or Step to go on."), \
            dash.status
    finally:
        dash.autosave.close()


def test_without_an_autosave_yet_the_page_opens_the_state_as_before(digits, tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    _state(digits, tmp_path / "lesson.pt", 2)
    monkeypatch.setenv(launch.STATE_ENV, str(tmp_path / "lesson.pt"))
    monkeypatch.setenv(launch.AUTOSAVE_ENV, str(tmp_path / "autosave.pt"))
    dash = launch.app_dashboard()
    try:
        assert dash.status == ("loaded lesson.pt: epoch 1, iteration 2. Press next_batch (the lit button) or Step to "
                               "go on.")
        dash.trainer.next_batch()
        dash.autosave.flush()
        assert Trainer.load(tmp_path / "autosave.pt").batches_drawn == 3
    finally:
        dash.autosave.close()
