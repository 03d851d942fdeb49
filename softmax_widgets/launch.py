"""`softmax-widgets lab` and `softmax-widgets app`: the notebooks in JupyterLab, or the dashboard alone via Voila."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .classroom import VISITOR_ENV, ClassSettings, add_class_arguments, class_settings, voila_config

__all__ = ["APP_PAGE", "DEFAULT_FOLDER", "CopyReport", "add_app_arguments", "add_lab_arguments", "app", "app_command",
           "app_dashboard", "app_folder", "cell_sources", "check_state", "copy_examples", "examples_dir",
           "kernel_metadata", "lab", "lab_command", "lab_settings_env", "run_app", "run_lab"]

PACKAGE = Path(__file__).resolve().parent
# the notebook Voila serves: the dashboard and nothing else (its code cells are hidden by Voila)
APP_PAGE = PACKAGE / "dashboard_app.ipynb"
DEFAULT_NOTEBOOK = "02_dashboard.ipynb"
DEFAULT_FOLDER = "notebooks"  # a work folder of the student's own (git-ignored in the repository)
DATASET_ENV = "SOFTMAX_WIDGETS_DATASET"
STATE_ENV = "SOFTMAX_WIDGETS_STATE"  # a state file the app page opens on (`softmax-widgets app --state`)
SCALE_ENV = "SOFTMAX_WIDGETS_SCALE"  # the app page's presentation scale (`softmax-widgets app --scale 1.5`)
# where the app page keeps its run while it changes (in the app's temporary folder): a reload reopens it
AUTOSAVE_ENV = "SOFTMAX_WIDGETS_AUTOSAVE"
AUTOSAVE_NAME = "autosave.pt"
AUTOSAVE_EVERY_S = 5.0  # at most one save per 5 s during Play (a few ms each), and one more as the kernel exits
# Voila's config for the app, in a folder of its own beside the page (a voila.py beside the page would shadow the
# voila package for `python -m voila`). Voila's page shuts its kernel down as it unloads (a reload, a closed tab)
# with a POST that must carry the _xsrf cookie, and Voila's page never sets that cookie: every reload left its
# kernel running (Voila logged "403 POST /voila/api/shutdown/... '_xsrf' argument missing"), about 1 GB each.
# Reading the handler's xsrf_token sets the cookie on the page's response; the check itself stays on (turning
# it off, tornado_settings disable_check_xsrf, would open every POST to other sites' pages). Culling idle kernels
# (MappingKernelManager.cull_idle_timeout) is no substitute: it acts after minutes, and a kernel that goes on
# sending messages (Play for a page that is gone) never counts as idle
APP_CONFIG_DIR = "voila-config"
APP_CONFIG = """\
# written by `softmax-widgets app` (softmax_widgets/launch.py): see APP_CONFIG there
def _set_xsrf_cookie(request_handler, notebook, cwd):
    request_handler.xsrf_token  # tornado sets the _xsrf cookie the page's unload needs to shut its kernel down
    return notebook


c.VoilaConfiguration.prelaunch_hook = _set_xsrf_cookie
"""
# defaults for this Lab only (the user's own settings still win): no "fetch news?" pop-up and no update check
# over the network, and no widget state saved with the notebook. Saved state weighs a megabyte for the
# dashboard and brings back a dead picture: every model disconnected, bqplot drawing into a zero-sized page
# (negative <rect> widths); without it a reopened notebook says where the dashboard was, and Run all brings it back
LAB_SETTING_DEFAULTS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False},
}
KERNEL_NAME = "python3"  # the shipped notebooks' kernel (ipykernel's own)


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
    unchanged: list[str] = field(default_factory=list)  # already there with the shipped cells (maybe run, saved)
    kept: list[str] = field(default_factory=list)  # already there with cells of its own: the student's edits

    def lines(self, folder: Path) -> list[str]:
        out = []
        if self.copied:
            out.append(f"copied {_names(self.copied)} into {folder}")
        if self.kept:
            one = len(self.kept) == 1
            out.append(f"kept your edited {_names(self.kept)} ({'its' if one else 'their'} cells differ from the "
                       f"shipped {'copy' if one else 'copies'}; rename or delete {'it' if one else 'them'} to get "
                       f"a fresh {'one' if one else 'set'})")
        return out


def _names(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def cell_sources(path: Path) -> list[tuple[str, str]] | None:
    """A notebook's cells as (type, source): what a student edits. Outputs, execution counts and metadata
    (which running and saving change) are left out. None for a file that is not a readable notebook."""
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
        return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                for c in cells]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kernel_metadata() -> dict:
    """The notebook metadata JupyterLab writes when this machine's python3 kernel connects (kernelspec and the
    kernel's language_info, Python version included). A notebook that already has it is not marked modified
    the moment it opens; what cannot be read here is left out (Lab then writes it, as before)."""
    meta: dict = {}
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        except NoSuchKernel:
            return meta
        meta["kernelspec"] = {"display_name": spec.display_name, "language": spec.language, "name": KERNEL_NAME}
        # the kernel runs on this Python (Lab's) when its spec names plain "python" (jupyter_client then starts
        # sys.executable; ipykernel's own spec does) or this very interpreter
        argv0 = spec.argv[0] if spec.argv else ""
        major, minor = sys.version_info[:2]
        if argv0 in ("python", f"python{major}", f"python{major}.{minor}") or (
                argv0 and Path(argv0).resolve() == Path(sys.executable).resolve()):
            meta["language_info"] = _language_info()
    except Exception:  # metadata is a nicety: a missing or odd Jupyter must not stop the lesson
        pass
    return meta


LANGUAGE_INFO = ("import json; from ipykernel.ipkernel import IPythonKernel; "
                 "print(json.dumps(IPythonKernel.language_info))")


def _language_info() -> dict:
    """ipykernel's language_info, asked of this Python in a child process: importing ipykernel here would make
    tqdm.auto (the download's bar) take this process for a notebook kernel."""
    out = subprocess.run([sys.executable, "-c", LANGUAGE_INFO], capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def _copy_notebook(src: Path, target: Path, meta: dict) -> None:
    """The shipped notebook with this machine's kernel metadata; contents only (a read-only install must not
    make a read-only copy)."""
    if not meta:
        shutil.copyfile(src, target)
        return
    nb = json.loads(src.read_text(encoding="utf-8"))
    nb.setdefault("metadata", {}).update(meta)
    # nbformat's layout (indent 1, sorted keys, a final newline): what Lab itself writes on save
    target.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


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


def copy_examples(folder: str | os.PathLike = DEFAULT_FOLDER) -> CopyReport:
    """Copy the shipped notebooks into `folder`; never overwrite one that is already there.

    One whose cells hold the shipped sources (only run or saved: outputs and metadata differ) is `unchanged`;
    one whose cells differ is `kept`, the student's edits. Copies get this machine's kernel metadata.
    """
    dest = Path(folder).expanduser().resolve()
    for forbidden in _install_dirs():
        if _inside(dest, forbidden):
            raise ValueError(f"{dest} is inside the installed package ({forbidden}): notebooks edited there are "
                             "lost on the next upgrade. Pick a folder of your own, e.g. softmax-widgets lab ~/lesson")
    if dest == examples_dir().resolve():
        raise ValueError(f"{dest} holds the shipped notebooks themselves (tracked by git in a checkout): working "
                         f"there would change them. Pick a work folder of your own, e.g. softmax-widgets lab "
                         f"{DEFAULT_FOLDER} (the default)")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest} is a file, not a folder: give the folder the notebooks should go into")
    dest.mkdir(parents=True, exist_ok=True)
    report, meta = CopyReport(), None
    for src in sorted(examples_dir().glob("*.ipynb")):
        target = dest / src.name
        if not target.exists():
            meta = kernel_metadata() if meta is None else meta
            _copy_notebook(src, target, meta)
            report.copied.append(src.name)
        elif target.samefile(src) or cell_sources(target) == cell_sources(src):
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
    if open_notebook:
        # the URL Jupyter prints and opens is then the notebook's own, not the Launcher's
        cmd.append(f"--LabApp.default_url=/lab/tree/{open_notebook}")  # LabApp sets the server's
    if port is not None:
        cmd.append(f"--port={int(port)}")
    return cmd + list(extra_args)


def lab_settings_env(config_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: ours) with LAB_SETTING_DEFAULTS in `config_dir`, put first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if env is None else env)
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    # JupyterLab layers <config path>/labconfig/default_setting_overrides.json under the user's settings
    (labconfig / "default_setting_overrides.json").write_text(json.dumps(LAB_SETTING_DEFAULTS, indent=1))
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (str(config_dir), env.get("JUPYTER_CONFIG_PATH")) if p)
    return env


def app_folder(folder: str | os.PathLike, settings: ClassSettings | None = None) -> Path:
    """Put the app page and its Voila config into `folder` (a temporary one: Voila starts the kernel beside the
    page, and the kernel's autosave goes there too), with a class's `settings` (classroom.py: the upload cap
    always); returns the page's path, for app_command()."""
    folder = Path(folder)
    page = folder / APP_PAGE.name
    shutil.copyfile(APP_PAGE, page)
    (folder / APP_CONFIG_DIR).mkdir(exist_ok=True)
    config = APP_CONFIG + voila_config(settings or ClassSettings(), str(PACKAGE.parent))
    (folder / APP_CONFIG_DIR / "voila.py").write_text(config, encoding="utf-8")
    return page


def app_command(port: int | None = None, extra_args: tuple[str, ...] | list[str] = (),
                page: Path = APP_PAGE) -> list[str]:
    """The Voila command line serving the dashboard page; with app_folder()'s config when it is beside `page`."""
    cmd = [sys.executable, "-m", "voila", str(page)]
    config = page.parent / APP_CONFIG_DIR
    if config.is_dir():
        # ours first (it wins), then the places Voila looks by default (the working folder, Jupyter's config path)
        try:
            from jupyter_core.paths import jupyter_config_path

            rest = jupyter_config_path()
        except ImportError:
            rest = []
        cmd.append(f"--Voila.config_file_paths={json.dumps([str(config), os.getcwd(), *rest])}")
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


def lab(folder: str | os.PathLike = DEFAULT_FOLDER, open_notebook: str | None = DEFAULT_NOTEBOOK,
        port: int | None = None, extra_args: tuple[str, ...] | list[str] = ()) -> int:
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
    print(f"JupyterLab serves {dest} (your copies: edit and save freely; Export writes into exports/ there)"
          + (f" and opens {open_notebook}: the address below goes straight to it." if open_notebook else "."),
          flush=True)
    with tempfile.TemporaryDirectory(prefix="softmax-widgets-lab-") as config:
        return _run(lab_command(dest, open_notebook, port, extra_args), env=lab_settings_env(Path(config)),
                    cwd=dest)


STATE_CHECK = """\
import sys
sys.path.append(sys.argv[2])  # this very package, wherever `softmax-widgets app` runs from
from softmax_widgets.persist import read
try:
    read(sys.argv[1])
except (OSError, ValueError) as err:
    print(err, file=sys.stderr)
    raise SystemExit(2)
"""


def check_state(path: str | os.PathLike) -> str | None:
    """Why the state file at `path` cannot be opened (persist.read's words), or None when it opens. Asked of a
    child process: reading a state file needs torch, and torch would stay in this process (~700 MB) for as long
    as the app runs, beside Voila and its kernels, which import it themselves."""
    try:
        out = subprocess.run([sys.executable, "-c", STATE_CHECK, os.fspath(path), str(PACKAGE.parent)],
                             capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"it could not be checked ({err})"
    if out.returncode == 0:
        return None
    lines = out.stderr.strip().splitlines()
    return lines[-1] if lines else f"the check exited with status {out.returncode}"


def app(port: int | None = None, dataset: str | None = None, extra_args: tuple[str, ...] | list[str] = (),
        state: str | os.PathLike | None = None, scale: float | None = None, cull_idle_s: int = 0,
        max_kernels: int = 0, prestart: int = 0) -> int:
    """Serve the dashboard alone as a web page through Voila (`pip install softmax-widgets[app]`); with `state`,
    on a prepared run (a file from Trainer.save or the Export tab), checked here before anything starts; with
    `scale`, at that presentation scale (1.5: every text and plot larger for a projector). The page autosaves its
    run into the app's temporary folder: a reload of the page reopens it and says so, and a closed or reloaded
    page shuts its kernel down. For a class: `cull_idle_s`, `max_kernels`, `prestart` (classroom.py). This
    process itself never imports torch."""
    try:
        settings = class_settings(cull_idle_s, max_kernels, prestart)
    except ValueError as err:
        print(f"softmax-widgets app: {err}", file=sys.stderr)
        return 2
    if scale is not None:
        from .ui.presentation import check_scale

        try:
            scale = check_scale(scale, "--scale", "--scale 1.5")
        except ValueError as err:
            print(f"softmax-widgets app: {err}", file=sys.stderr)
            return 2
    import importlib.util

    if importlib.util.find_spec("voila") is None:  # not imported: only to say how to get it
        print("softmax-widgets app needs Voila: pip install 'softmax-widgets[app]' (or pip install 'voila>=0.5')",
              file=sys.stderr)
        return 2
    env = dict(os.environ)
    if dataset:
        env[DATASET_ENV] = dataset
    if scale is not None:
        env[SCALE_ENV] = f"{scale:g}"
    if state is not None:
        path = Path(state).expanduser().resolve()
        problem = check_state(path)
        if problem is not None:
            print(f"softmax-widgets app: cannot open the state {state}: {problem}", file=sys.stderr)
            return 2
        env[STATE_ENV] = str(path)  # absolute: the page runs in a temporary folder
    # Voila starts the kernel beside the notebook: serve a copy from a temporary folder, never from site-packages
    with tempfile.TemporaryDirectory(prefix="softmax-widgets-app-") as tmp:
        env[AUTOSAVE_ENV] = str(Path(tmp) / AUTOSAVE_NAME)
        for line in settings.lines():
            print(f"softmax-widgets app: {line}", flush=True)
        return _run(app_command(port, extra_args, app_folder(tmp, settings)), env=env, cwd=Path(tmp))


def visitor_autosave() -> str | None:
    """This page's autosave: one per visitor (a class shares the app), named by the visitor's key that
    voila_class.prelaunch_hook gives the kernel; none for a kernel started before any visitor (--prestart)."""
    autosave, visitor = os.environ.get(AUTOSAVE_ENV), os.environ.get(VISITOR_ENV)
    if not autosave or os.environ.get("VOILA_PREHEAT") == "True":
        return None
    if visitor and visitor.isalnum():
        root, ext = os.path.splitext(autosave)
        return f"{root}-{visitor}{ext}"
    return autosave


def app_dashboard():
    """The app page's dashboard (dashboard_app.ipynb calls this in Voila's kernel): the run of this app's
    autosave if the page was open before (a reload), else the state file of `--state`, else a fresh run of
    `--dataset`; the status line says which, and the run is autosaved from then on."""
    from .app import Dashboard
    from .persist import Autosave
    from .trainer import Trainer
    from .ui.player import current_loop

    scale = float(os.environ.get(SCALE_ENV, "1"))
    state, autosave = os.environ.get(STATE_ENV), visitor_autosave()
    trainer, said = None, ""
    if autosave and os.path.exists(autosave):
        try:
            trainer = Trainer.load(autosave)
        except (OSError, ValueError) as err:
            said = f"this app's autosave could not be reopened ({err}); " + ("" if state else "a new run starts.")
        else:
            saved = time.strftime("%H:%M:%S", time.localtime(os.path.getmtime(autosave)))
            kept = f"; {os.path.basename(state)} itself is unchanged" if state else ""
            said = (f"reopened iteration {trainer.iteration} (epoch {trainer.epoch + 1}) from this app's autosave of "
                    f"{saved}, where the page was before it was reloaded{kept}. Press {trainer.next_phase} (the lit "
                    f"button) or Step to go on.")
    if trainer is None and state:
        trainer = Trainer.load(state)
        said += (f"loaded {os.path.basename(state)}: epoch {trainer.epoch + 1}, iteration {trainer.iteration}. "
                 f"Press {trainer.next_phase} (the lit button) or Step to go on.")
    if trainer is None:
        dashboard = Dashboard.from_dataset(os.environ.get(DATASET_ENV, "fashion-mnist"), scale=scale)
    else:
        # on the status line (a note above the buttons would push the W maps off a 1280×720 projector at 1.5)
        dashboard = Dashboard(trainer, scale=scale)
    if said:
        dashboard.say(said)
    dashboard.autosave = None
    if autosave:
        dashboard.autosave = Autosave(dashboard.trainer, autosave, every_s=AUTOSAVE_EVERY_S, loop=current_loop())
    return dashboard


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `softmax-widgets lab`; hand the parsed namespace to run_lab()."""
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                        help=f"the work folder the notebooks are copied into (default: ./{DEFAULT_FOLDER})")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `softmax-widgets app`; hand the parsed namespace to run_app()."""
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--dataset", default=None,
                        help="fashion-mnist (default), mnist, kmnist, fashion-mnist-small or digits (both bundled)")
    parser.add_argument("--state", default=None, metavar="FILE",
                        help="open on a prepared run: a state file saved by Trainer.save() or the Export tab")
    parser.add_argument("--scale", type=_scale_argument, default=None,
                        help="presentation scale from 1 to 2: 1.5 enlarges every text and plot for a projector "
                             "(the page's A+ button toggles it)")
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    add_class_arguments(parser)


def _scale_argument(text: str) -> float:
    """--scale: a number from 1 to 2, refused in the same words as Dashboard(scale=...)."""
    from .ui.presentation import check_scale

    try:
        value = float(text)
    except ValueError:
        value = text  # not a number: check_scale says so, with the text as typed
    try:
        return check_scale(value, "--scale", "--scale 1.5")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_lab(args: argparse.Namespace) -> int:
    """`softmax-widgets lab` from the options of add_lab_arguments()."""
    return lab(args.folder, port=args.port, extra_args=["--no-browser"] if args.no_browser else [])


def run_app(args: argparse.Namespace) -> int:
    """`softmax-widgets app` from the options of add_app_arguments()."""
    return app(port=args.port, dataset=args.dataset, extra_args=["--no-browser"] if args.no_browser else [],
               state=args.state, scale=args.scale, cull_idle_s=args.cull_idle, max_kernels=args.max_kernels,
               prestart=args.prestart)
