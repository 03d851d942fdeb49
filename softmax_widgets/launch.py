"""`softmax-widgets lab` and `softmax-widgets app`: the notebooks in JupyterLab, or the dashboard alone via Voila."""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["APP_PAGE", "CopyReport", "add_app_arguments", "add_lab_arguments", "app", "app_command",
           "copy_examples", "examples_dir", "lab", "lab_command", "run_app", "run_lab"]

PACKAGE = Path(__file__).resolve().parent
# the notebook Voila serves: the dashboard and nothing else (its code cells are hidden by Voila)
APP_PAGE = PACKAGE / "dashboard_app.ipynb"
DEFAULT_NOTEBOOK = "02_dashboard.ipynb"
DATASET_ENV = "SOFTMAX_WIDGETS_DATASET"


def examples_dir() -> Path:
    """The shipped notebooks: inside the installed wheel, else the source checkout's examples/."""
    for cand in (PACKAGE / "examples", PACKAGE.parent / "examples"):
        if cand.is_dir() and any(cand.glob("*.ipynb")):
            return cand
    raise FileNotFoundError(
        f"the example notebooks are missing: looked in {PACKAGE / 'examples'} (installed wheel) and "
        f"{PACKAGE.parent / 'examples'} (source checkout). Reinstall softmax-widgets (pip install softmax-widgets).")


@dataclass
class CopyReport:
    """What copy_examples did with each notebook, so the command can say it."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already there, identical to the shipped one
    kept: list[str] = field(default_factory=list)  # already there and different: the student's work

    def lines(self, folder: Path) -> list[str]:
        out = []
        if self.copied:
            out.append(f"copied {', '.join(self.copied)} into {folder}")
        if self.kept:
            out.append(f"kept your own {', '.join(self.kept)} (it differs from the shipped copy; rename or delete "
                       "it to get a fresh one)")
        return out


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _install_dirs() -> list[Path]:
    """Folders no command of ours should write into: site-packages and the installed package."""
    dirs = {PACKAGE} if not (PACKAGE.parent / "pyproject.toml").exists() else set()
    for key in ("purelib", "platlib"):
        if path := sysconfig.get_paths().get(key):
            dirs.add(Path(path).resolve())
    return sorted(dirs)


def copy_examples(folder: str | os.PathLike = ".") -> CopyReport:
    """Copy the shipped notebooks into `folder`; never overwrite a copy that differs (the student's changes)."""
    dest = Path(folder).expanduser().resolve()
    for forbidden in _install_dirs():
        if _inside(dest, forbidden):
            raise ValueError(f"{dest} is inside the installed package ({forbidden}): notebooks edited there are "
                             "lost on the next upgrade. Pick a folder of your own, e.g. softmax-widgets lab ~/lesson")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest} is a file, not a folder: give the folder the notebooks should go into")
    dest.mkdir(parents=True, exist_ok=True)
    report = CopyReport()
    for src in sorted(examples_dir().glob("*.ipynb")):
        target = dest / src.name
        if not target.exists():
            shutil.copyfile(src, target)  # contents only: a read-only install must not make a read-only copy
            report.copied.append(src.name)
        elif target.samefile(src) or filecmp.cmp(src, target, shallow=False):
            report.unchanged.append(src.name)
        else:
            report.kept.append(src.name)
    return report


def _root_args() -> list[str]:
    # Jupyter refuses to start as root unless told; containers and Binder-like images often run as root
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def lab_command(folder: Path, open_notebook: str | None = DEFAULT_NOTEBOOK, port: int | None = None,
                extra_args: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The JupyterLab command line: serve `folder`, open `open_notebook` (relative to it)."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", *_root_args()]
    if port is not None:
        cmd.append(f"--port={int(port)}")
    cmd += list(extra_args)
    if open_notebook:
        cmd.append(open_notebook)
    return cmd


def app_command(port: int | None = None, extra_args: tuple[str, ...] | list[str] = (),
                page: Path = APP_PAGE) -> list[str]:
    """The Voila command line serving the dashboard page."""
    cmd = [sys.executable, "-m", "voila", str(page)]
    if port is not None:
        cmd.append(f"--port={int(port)}")
    return cmd + list(extra_args)


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run the server in the foreground until it exits; our own stop signals are passed on to it."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd)
    forwarded = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # without this, `kill <our pid>` would leave the server (and its kernels) running as orphans
        for sig in forwarded:
            previous[sig] = signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the server too: let it shut its kernels down
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def lab(folder: str | os.PathLike = ".", open_notebook: str | None = DEFAULT_NOTEBOOK, port: int | None = None,
        extra_args: tuple[str, ...] | list[str] = ()) -> int:
    """Copy the example notebooks into `folder` and open JupyterLab there on the dashboard notebook."""
    try:
        report = copy_examples(folder)
    except (ValueError, FileNotFoundError) as err:
        print(f"softmax-widgets lab: {err}", file=sys.stderr)
        return 2
    dest = Path(folder).expanduser().resolve()
    for line in report.lines(dest):
        print(line, flush=True)
    if open_notebook and not (dest / open_notebook).exists():
        print(f"softmax-widgets lab: {open_notebook} is not in {dest}; opening the folder instead", file=sys.stderr)
        open_notebook = None
    return _run(lab_command(dest, open_notebook, port, extra_args), cwd=dest)


def app(port: int | None = None, dataset: str | None = None, extra_args: tuple[str, ...] | list[str] = ()) -> int:
    """Serve the dashboard alone as a web page through Voila (`pip install softmax-widgets[app]`)."""
    try:
        import voila  # noqa: F401 - only to say how to get it
    except ImportError:
        print("softmax-widgets app needs Voila: pip install 'softmax-widgets[app]' (or pip install 'voila>=0.5')",
              file=sys.stderr)
        return 2
    env = dict(os.environ)
    if dataset:
        env[DATASET_ENV] = dataset
    # Voila starts the kernel beside the notebook: serve a copy from a temporary folder, never from site-packages
    with tempfile.TemporaryDirectory(prefix="softmax-widgets-app-") as tmp:
        page = Path(tmp) / APP_PAGE.name
        shutil.copyfile(APP_PAGE, page)
        return _run(app_command(port, extra_args, page), env=env, cwd=Path(tmp))


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `softmax-widgets lab`; hand the parsed namespace to run_lab()."""
    parser.add_argument("folder", nargs="?", default=".", help="where the notebooks go (default: here)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `softmax-widgets app`; hand the parsed namespace to run_app()."""
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--dataset", default=None, help="fashion-mnist (default), mnist, kmnist or digits")
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")


def run_lab(args: argparse.Namespace) -> int:
    """`softmax-widgets lab` from the options of add_lab_arguments()."""
    return lab(args.folder, port=args.port, extra_args=["--no-browser"] if args.no_browser else [])


def run_app(args: argparse.Namespace) -> int:
    """`softmax-widgets app` from the options of add_app_arguments()."""
    return app(port=args.port, dataset=args.dataset, extra_args=["--no-browser"] if args.no_browser else [])
