"""`softmax-widgets assignment [FOLDER]`: a course folder for nbgrader, the lesson as a graded assignment.

The instructor's notebook ships with the package in nbgrader's layout (assignments/source/NAME/NAME.ipynb); this
copies it and an nbgrader_config.py into FOLDER, ready for `nbgrader generate_assignment NAME` run there (see
docs/grading.md). Standard library only: the CLI imports it for --help, and writing the folder needs no nbgrader.
An instructor's edited copy is never overwritten without --force.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

__all__ = ["ASSIGNMENT", "CONFIG", "TIMEOUT", "add_arguments", "run", "source_notebook", "write_course"]

ASSIGNMENT = "softmax_from_scratch"
PACKAGE = Path(__file__).resolve().parent
DEFAULT_FOLDER = "course"
TIMEOUT = 60  # seconds per cell when grading; the slowest (importing torch) took 7 s on a busy 2-core box
CONFIG = f'''\
# nbgrader's settings for this course, written by `softmax-widgets assignment` (see docs/grading.md)
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "softmax_widgets"
# a student's function that never returns is interrupted after this many seconds: that question scores 0 and
# the rest of the notebook is still graded
c.Execute.timeout = {TIMEOUT}
'''


def source_notebook() -> Path:
    """The instructor's notebook: inside the installed wheel, else the source checkout's assignments/."""
    rel = Path("assignments", "source", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    for root in (PACKAGE, PACKAGE.parent):
        if (root / rel).is_file():
            return root / rel
    raise FileNotFoundError(f"the assignment notebook is missing: looked in {PACKAGE / rel} (installed wheel) and "
                            f"{PACKAGE.parent / rel} (source checkout). Reinstall softmax-widgets.")


def write_course(folder: str | os.PathLike = DEFAULT_FOLDER, force: bool = False) -> list[str]:
    """Write FOLDER/nbgrader_config.py and FOLDER/source/NAME/NAME.ipynb; one line per file on what was done.

    A file already there with other contents is kept (the instructor's edits, an existing course's config)
    unless force=True.
    """
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} is a file, not a folder: give `softmax-widgets assignment` a folder "
                                 "(new or an nbgrader course's root).")
    src = source_notebook()
    wanted = {root / "nbgrader_config.py": CONFIG.encode(),
              root / "source" / ASSIGNMENT / src.name: src.read_bytes()}
    lines = []
    for path, data in wanted.items():
        if path.is_file() and path.read_bytes() == data:
            lines.append(f"{path}: already there, unchanged")
            continue
        if path.exists() and not force:
            lines.append(f"{path}: kept (it differs from the kit's; --force replaces it)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # never a half-written notebook
        lines.append(f"{path}: written")
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                   help=f"the course folder (default ./{DEFAULT_FOLDER}); an existing nbgrader course's root works")
    p.add_argument("--force", action="store_true", help="replace files that differ from the kit's")


def run(args: argparse.Namespace) -> int:
    try:
        lines = write_course(args.folder, force=args.force)
    except OSError as err:  # the notebook missing, a file where the folder goes, no permission
        print(f"softmax-widgets assignment: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    nbgrader = "nbgrader" if shutil.which("nbgrader") else "nbgrader (pip install nbgrader)"
    print(f"Next, in {args.folder}: {nbgrader} generate_assignment {ASSIGNMENT}; the student's version is then "
          f"release/{ASSIGNMENT}/. How to collect and grade: docs/grading.md")
    return 0
