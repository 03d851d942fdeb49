"""`softmax-widgets lab` / `app`: notebooks copied safely, the wheel ships them, the servers really start."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from softmax_widgets import launch

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (REPO / "examples").glob("*.ipynb"))


def test_examples_dir_is_the_checkout_when_running_from_source():
    assert launch.examples_dir() == REPO / "examples"
    assert "03_instructor_live_coding.ipynb" in SHIPPED


def test_copy_examples_copies_then_leaves_identical_and_keeps_changed_copies(tmp_path):
    dest = tmp_path / "lesson"
    first = launch.copy_examples(dest)
    assert first.copied == SHIPPED and not first.kept
    for name in SHIPPED:
        assert launch.cell_sources(dest / name) == launch.cell_sources(REPO / "examples" / name)

    # a student edits one notebook and deletes another
    mine = dest / SHIPPED[0]
    mine.write_text(mine.read_text().replace('"cells": [', '"cells": [\n  {"cell_type": "markdown", "id": "x", '
                                                          '"metadata": {}, "source": ["my notes"]},', 1))
    edited = mine.read_bytes()
    (dest / SHIPPED[-1]).unlink()
    second = launch.copy_examples(dest)
    assert second.kept == [SHIPPED[0]]
    assert second.copied == [SHIPPED[-1]]
    assert sorted(second.unchanged) == SHIPPED[1:-1]
    assert mine.read_bytes() == edited, "the student's changed copy was overwritten"
    assert any("kept your edited" in line for line in second.lines(dest))


def run_and_save_like_lab(path: Path) -> None:
    """What running every cell and saving in JupyterLab does to a notebook: outputs, execution counts, the
    kernel's metadata, cell metadata; the sources stay."""
    nb = json.loads(path.read_text())
    for n, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = n + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
        cell["metadata"]["scrolled"] = True
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.7", "file_extension": ".py"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    path.write_text(json.dumps(nb, indent=2))


def test_a_second_make_lab_never_calls_notebooks_that_were_only_run_your_own(tmp_path):
    """A second `make lab` said "kept your own 01…, 02… (it differs …)" for notebooks only run, not edited."""
    dest = tmp_path / "lesson"
    launch.copy_examples(dest)
    for name in SHIPPED:
        run_and_save_like_lab(dest / name)
    ran = {name: (dest / name).read_bytes() for name in SHIPPED}
    again = launch.copy_examples(dest)
    assert again.unchanged == SHIPPED and not again.kept and not again.copied
    assert again.lines(dest) == []
    assert ran == {name: (dest / name).read_bytes() for name in SHIPPED}, "a run notebook was overwritten"


def test_two_edited_notebooks_are_named_in_the_plural(tmp_path):
    """Two kept notebooks were reported as "kept your own 01…, 02… (it differs from the shipped copy…)"."""
    dest = tmp_path / "lesson"
    launch.copy_examples(dest)
    for name in SHIPPED[:2]:
        nb = json.loads((dest / name).read_text())
        nb["cells"][0]["source"] = ["my notes\n", *nb["cells"][0]["source"]]
        (dest / name).write_text(json.dumps(nb))
    (line,) = launch.copy_examples(dest).lines(dest)
    assert line == (f"kept your edited {SHIPPED[0]} and {SHIPPED[1]} (their cells differ from the shipped copies; "
                    "rename or delete them to get a fresh set)")
    (dest / SHIPPED[1]).unlink()
    lines = launch.copy_examples(dest).lines(dest)
    assert lines == [f"copied {SHIPPED[1]} into {dest.resolve()}",
                     f"kept your edited {SHIPPED[0]} (its cells differ from the shipped copy; rename or delete it "
                     "to get a fresh one)"]


def test_copies_carry_the_kernel_metadata_lab_would_write_on_open(tmp_path):
    """JupyterLab writes kernelspec and language_info when the kernel connects: a copy without them showed as
    modified the moment it opened. The copies carry this machine's, as Lab would write them."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    # asked of a child: importing ipykernel here would turn this process's tqdm.auto bars into notebook widgets
    language_info = json.loads(subprocess.run([sys.executable, "-c", launch.LANGUAGE_INFO], capture_output=True,
                                              text=True, check=True, timeout=60).stdout)
    assert language_info["name"] == "python" and language_info["version"] == platform.python_version()
    launch.copy_examples(tmp_path)
    for name in SHIPPED:
        meta = json.loads((tmp_path / name).read_text())["metadata"]
        assert meta["kernelspec"] == {"name": "python3", "display_name": spec.display_name, "language": "python"}
        assert meta["language_info"] == language_info  # the version included
        shipped = json.loads((REPO / "examples" / name).read_text())["metadata"]
        assert shipped["kernelspec"] == {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                         "language": "python"}


def test_the_shipped_examples_folder_is_never_the_work_folder(capsys):
    before = {p: p.read_bytes() for p in (REPO / "examples").glob("*.ipynb")}
    with pytest.raises(ValueError, match="holds the shipped notebooks themselves.*softmax-widgets lab notebooks"):
        launch.copy_examples(REPO / "examples")
    assert launch.lab(REPO / "examples", extra_args=["--version"]) == 2  # refused before anything starts
    assert "shipped notebooks" in capsys.readouterr().err
    assert before == {p: p.read_bytes() for p in (REPO / "examples").glob("*.ipynb")}


def test_copy_examples_refuses_site_packages_and_files(tmp_path):
    site = Path(sysconfig.get_paths()["purelib"])
    with pytest.raises(ValueError, match="inside the installed package"):
        launch.copy_examples(site / "softmax_widgets_lesson")
    assert not (site / "softmax_widgets_lesson").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        launch.copy_examples(a_file)


def test_lab_command_opens_the_dashboard_notebook(tmp_path):
    cmd = launch.lab_command(tmp_path, port=8899, extra_args=["--no-browser"])
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path}" in cmd and "--port=8899" in cmd
    assert "--LabApp.default_url=/lab/tree/02_dashboard.ipynb" in cmd  # the printed URL is the notebook's
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
    assert not any("default_url" in a for a in launch.lab_command(tmp_path, open_notebook=None))


def test_lab_settings_defaults_turn_the_news_off_and_save_no_widget_state(tmp_path):
    """Saved widget state made notebook 02 weigh 1.2 MB and a reopened one a dead picture (disconnected icons,
    72 console errors `<rect> attribute width: A negative value`): this Lab saves none."""
    env = launch.lab_settings_env(tmp_path / "cfg", {"JUPYTER_CONFIG_PATH": "/elsewhere"})
    assert env["JUPYTER_CONFIG_PATH"] == os.pathsep.join([str(tmp_path / "cfg"), "/elsewhere"])
    written = json.loads((tmp_path / "cfg" / "labconfig" / "default_setting_overrides.json").read_text())
    assert written["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert written["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is False


def test_make_lab_installs_the_lesson_without_test_tools_and_works_outside_the_tracked_tree():
    out = subprocess.run(["make", "-n", "-B", "VENV=/nonexistent-venv", "lab"], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    pip = [line for line in out.splitlines() if "pip install" in line]
    assert pip and not any("[test]" in line or " -q" in line for line in pip), pip  # pip's progress shows
    assert "softmax-widgets lab notebooks" in out
    ignored = subprocess.run(["git", "check-ignore", "-q", "notebooks/02_dashboard.ipynb"], cwd=REPO)
    assert ignored.returncode == 0, "notebooks/ must be git-ignored"
    test = subprocess.run(["make", "-n", "-B", "VENV=/nonexistent-venv", "install"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True).stdout
    assert "'.[test]'" in test  # make test keeps its own install, with the test extras
    app = subprocess.run(["make", "-n", "-B", "VENV=/nonexistent-venv", "app"], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "'.[app]'" in app and "[test]" not in app  # the Voila page needs Voila, not Playwright


def test_lab_refuses_site_packages_before_starting_anything(capsys):
    site = Path(sysconfig.get_paths()["purelib"])
    assert launch.lab(site / "softmax_widgets_lesson", extra_args=["--version"]) == 2
    assert "installed package" in capsys.readouterr().err


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("hatchling", reason="building the wheel offline needs hatchling (the [test] extra)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    return next(out.glob("softmax_widgets-*.whl"))


def test_wheel_ships_the_notebooks_and_the_app_page(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for name in SHIPPED:
        assert f"softmax_widgets/examples/{name}" in names
    assert "softmax_widgets/dashboard_app.ipynb" in names
    # the front-end modules anywidget loads (ui/front_end.py reads them beside itself)
    assert {"softmax_widgets/ui/keys.js", "softmax_widgets/ui/download.js"} <= set(names)
    assert "softmax_widgets/assignments/source/softmax_from_scratch/softmax_from_scratch.ipynb" in names
    # the offline data sets and their notices travel with the package
    for folder in ("fashion-mnist-small", "digits"):
        assert f"softmax_widgets/datasets/{folder}/LICENSE" in names
    assert "softmax_widgets/datasets/fashion-mnist-small/train-images-idx3-ubyte.gz" in names
    assert "softmax_widgets/datasets/digits/digits.csv.gz" in names


def test_installed_wheel_copies_out_of_the_package_and_never_into_it(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    dest = tmp_path / "work"
    script = (f"from softmax_widgets import launch\n"
              f"print(launch.examples_dir())\n"
              f"r = launch.copy_examples({str(dest)!r}); print(len(r.copied))\n"
              f"try:\n    launch.copy_examples(launch.PACKAGE / 'mine')\n"
              f"except ValueError as e:\n    print('refused:', e)\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[0] == str(site / "softmax_widgets" / "examples")
    assert out[1] == str(len(SHIPPED))
    assert out[2].startswith("refused:") and "installed package" in out[2]
    assert sorted(p.name for p in dest.glob("*.ipynb")) == SHIPPED
    assert not (site / "softmax_widgets" / "mine").exists()


# ---- the real servers, started the way the command starts them ----

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _throwaway_jupyter_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        (home / var).mkdir(parents=True)
        env[var] = str(home / var)
    return env


def _get(url: str, deadline: float, proc: subprocess.Popen, log: Path) -> bytes:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                return r.read()
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"no answer from {url}:\n{log.read_text()[-3000:]}")


def _start(code: str, home: Path, cwd: Path) -> tuple[subprocess.Popen, Path]:
    log = home / "server.log"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=_throwaway_jupyter_env(home), cwd=cwd)
    return proc, log


def _stop(proc: subprocess.Popen) -> int:
    # SIGTERM to our process only: launch._run must pass it on, or the server would be left running
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def _server_pids(parent: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _settings_default(port: int, plugin: str, key: str):
    url = f"http://127.0.0.1:{port}/lab/api/settings/{plugin}?token=t"
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())["schema"]["properties"][key]["default"]


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_a_fresh_clone_opens_lab_on_the_dashboard_in_an_ignored_work_folder(tmp_path):
    """What a student types after `git clone`: the work is copied out of the tracked tree, the URL is 02's."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120, capture_output=True)
    port = _free_port()
    env = _throwaway_jupyter_env(tmp_path / "home")
    env.update(PYTHONPATH=str(clone), JUPYTER_TOKEN="t")  # the clone's own package, not this checkout's
    log = tmp_path / "lab.log"
    proc = subprocess.Popen([sys.executable, "-m", "softmax_widgets.cli", "lab", "--no-browser", "--port",
                             str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=clone)
    try:
        listing = json.loads(_get(f"http://127.0.0.1:{port}/api/contents?token=t", time.monotonic() + 180, proc, log))
        assert sorted(i["name"] for i in listing["content"] if i["name"].endswith(".ipynb")) == SHIPPED
        printed = re.findall(r"http://\S+", log.read_text())
        assert any(f":{port}/lab/tree/02_dashboard.ipynb" in url for url in printed), log.read_text()[-2000:]
        assert f"serves {clone / 'notebooks'}" in log.read_text()
        # no "fetch news?" pop-up, and no widget state saved with the notebook (small files, no dead picture)
        assert _settings_default(port, "@jupyterlab/apputils-extension:notification", "fetchNews") == "false"
        assert _settings_default(port, "@jupyter-widgets/jupyterlab-manager:plugin", "saveState") is False
        servers = _server_pids(proc.pid)
        assert servers
    finally:
        rc = _stop(proc)
    assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM, 1), log.read_text()[-2000:]
    assert all(_gone(pid) for pid in servers), "JupyterLab outlived `softmax-widgets lab`"
    assert sorted(p.name for p in (clone / "notebooks").glob("*.ipynb")) == SHIPPED
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"the session changed the clone's tracked tree:\n{status}"


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_app_serves_the_dashboard_page_through_voila(tmp_path):
    pytest.importorskip("voila")
    port = _free_port()
    code = (f"from softmax_widgets import launch\nraise SystemExit(launch.app(port={port}, dataset='digits', "
            f"extra_args=['--no-browser', '--Voila.ip=127.0.0.1']))")
    proc, log = _start(code, tmp_path, tmp_path)
    try:
        # Voila runs the page's notebook before it answers: the HTML then holds the dashboard's widget view
        page = _get(f"http://127.0.0.1:{port}/", time.monotonic() + 240, proc, log).decode()
        assert "application/vnd.jupyter.widget-view+json" in page
        assert "Traceback" not in page
        servers = _server_pids(proc.pid)
    finally:
        rc = _stop(proc)
    assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM, 1), log.read_text()[-2000:]
    assert all(_gone(pid) for pid in servers), "Voila outlived `softmax-widgets app`"
    site = Path(sysconfig.get_paths()["purelib"])
    assert not any(site.glob("softmax_widgets*/**/.ipynb_checkpoints"))


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_the_app_page_opens_on_a_prepared_state(tmp_path, monkeypatch):
    """`softmax-widgets app --state lesson.pt`: the page's kernel continues the saved run, and says so."""
    import nbformat
    from nbclient import NotebookClient

    from softmax_widgets import Trainer, load_dataset

    t = Trainer(load_dataset("digits"), batch_size=64, seed=4)
    for _ in range(3):
        t.train_step()
    t.next_batch()
    t.forward()
    t.save(tmp_path / "lesson.pt")
    nb = nbformat.read(launch.APP_PAGE, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "print('ITER', dashboard.trainer.iteration, dashboard.trainer.next_phase.value, dashboard.trainer.seed,"
        " 'SCALE', dashboard.scale)\nprint('STATUS', dashboard.status)"))
    monkeypatch.setenv(launch.STATE_ENV, str(tmp_path / "lesson.pt"))
    monkeypatch.setenv(launch.SCALE_ENV, "1.5")  # `--state lesson.pt --scale 1.5`: in class, on a projector
    NotebookClient(nb, timeout=240, startup_timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "ITER 3 zero_grad 4 SCALE 1.5" in out
    # what was loaded is said on the status line (a note above the buttons would cost the projector a line)
    assert ("STATUS loaded lesson.pt: epoch 1, iteration 3. Press zero_grad (the lit button) or Step to go "
            "on.") in out, out
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_app_refuses_a_broken_state_before_starting_anything(tmp_path, capsys):
    (tmp_path / "broken.pt").write_bytes(b"not a state")
    assert launch.app(state=tmp_path / "broken.pt") == 2
    err = capsys.readouterr().err
    assert "cannot open the state" in err and "broken.pt is not a softmax_widgets state file" in err


@pytest.mark.parametrize("scale", [0.5, 3.0, float("nan")])
def test_app_refuses_a_scale_it_cannot_show_before_starting_anything(scale, capsys):
    pytest.importorskip("voila")
    assert launch.app(scale=scale) == 2
    err = capsys.readouterr().err
    assert err.startswith("softmax-widgets app: --scale must be a number from 1 (normal size) to 2") \
        and "--scale 1.5 enlarges" in err


def test_app_takes_scale_on_the_command_line(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    launch.add_app_arguments(parser)
    args = parser.parse_args(["--state", "lesson.pt", "--scale", "1.5"])
    assert (args.state, args.scale) == ("lesson.pt", 1.5)
    for bad, said in (("big", "got 'big'"), ("3", "got 3.0")):
        with pytest.raises(SystemExit):  # argparse: the usage, then our sentence, exit status 2
            parser.parse_args(["--scale", bad])
        err = capsys.readouterr().err
        assert f"argument --scale: --scale must be a number from 1 (normal size) to 2; {said}" in err


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _listening(port: int, deadline: float, proc: subprocess.Popen, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"the app never listened on {port}:\n{log.read_text()[-3000:]}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc (Linux)")
@pytest.mark.timeout(300)
def test_the_app_process_checks_the_state_without_keeping_torch(tmp_path):
    """`softmax-widgets app --state lesson.pt` stays beside Voila for the whole lecture: it checks the state file
    (in a child process) and never imports torch itself, so it holds far less memory than torch alone."""
    pytest.importorskip("voila")
    from softmax_widgets import Trainer, load_dataset

    t = Trainer(load_dataset("digits"), batch_size=64, seed=4)
    t.train_step()
    t.save(tmp_path / "lesson.pt")
    torch_alone = float(subprocess.run(
        [sys.executable, "-c", "import torch, pathlib; print([int(l.split()[1]) / 1024 for l in "
         "pathlib.Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS:')][0])"],
        capture_output=True, text=True, timeout=120, check=True).stdout)
    port = _free_port()
    log = tmp_path / "app.log"
    proc = subprocess.Popen([sys.executable, "-m", "softmax_widgets.cli", "app", "--state", str(tmp_path / "lesson.pt"),
                             "--port", str(port), "--no-browser"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=_throwaway_jupyter_env(tmp_path / "home"), cwd=tmp_path)
    try:
        _listening(port, time.monotonic() + 180, proc, log)  # the state was checked, Voila runs
        app_mb = _rss_mb(proc.pid)
        voila_mb = sum(_rss_mb(p) for p in _server_pids(proc.pid))
    finally:
        rc = _stop(proc)
    assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM, 1), log.read_text()[-2000:]
    print(f"app process {app_mb:.0f} MB, Voila {voila_mb:.0f} MB, `import torch` alone {torch_alone:.0f} MB")
    assert app_mb < torch_alone / 3, (app_mb, torch_alone)
