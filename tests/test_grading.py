"""The assignment under the real nbgrader, on a temporary course: generate_assignment, then autograde and
generate_feedback on submissions written here (the lesson's functions, each classic mistake, a function that never
returns, an unanswered notebook). Expected messages come from running the same check here, so rewording a hint in
checks.py never breaks this test."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from softmax_widgets import assignment, checks

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(900)]

NAME = assignment.ASSIGNMENT
POINTS = {"softmax": 3, "cross_entropy": 3, "net": 2, "sgd": 2}
CHECK = {"softmax": checks.check_softmax, "cross_entropy": checks.check_cross_entropy, "net": checks.check_net,
         "sgd": checks.check_sgd}
CELL_TIMEOUT = 30  # nbgrader's default; the looping submission waits this long once

SOFTMAX = '''def softmax(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=1, keepdim=True)'''
# the classic mistakes, one per question in each submission, so each question's loss shows on its own (and a
# broken softmax must not cost net's points): student -> {question: the student's code}
MISTAKES = {
    "mistakes_a": {
        "softmax": '''def softmax(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=1)  # no keepdim''',
        "cross_entropy": '''def cross_entropy(y_hat, y):
    return -torch.log(y_hat.gather(1, y.view(-1, 1))).mean()  # one number, not one per image''',
        "sgd": '''def sgd(params, lr, batch_size):
    for param in params:
        param.data -= lr * param.grad  # no division by the batch size''',
    },
    "mistakes_b": {
        "softmax": '''def softmax(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=0, keepdim=True)  # over the wrong axis''',
        "net": '''def net(X, W, b):
    return softmax(X @ W + b)  # images not flattened''',
        "sgd": '''def sgd(params, lr, batch_size):
    for param in params:
        param = param - lr * param.grad / batch_size  # a new tensor: the parameter never moves''',
    },
}
LOOPS = '''def sgd(params, lr, batch_size):
    while True:  # never returns: the grader's time limit must stop it
        pass'''


def solutions(source: Path) -> dict[str, str]:
    """The instructor's solution cells, markers removed: the lesson's functions as a student would write them."""
    nb = nbformat.read(source, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: "\n".join(
        line for line in c.source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
        for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def submit(course: Path, release: Path, student: str, answers: dict[str, str]) -> None:
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    folder = course / "submitted" / student / NAME
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{NAME}.ipynb")


def nbgrader(course: Path, *args: str) -> tuple[str, float]:
    # nbgrader runs `alembic` from PATH for its gradebook: this venv's bin first, as an activated venv has it.
    # The kernels' connection files go in the course, so the test can tell its own kernels have all stopped
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "JUPYTER_RUNTIME_DIR": str(course / "runtime")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          timeout=780, env=env)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr, time.perf_counter() - start


def kernels_left(course: Path) -> list[str]:
    """Processes still running on a connection file of this course's runtime folder (Linux's /proc)."""
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it ended meanwhile
            continue
        if any(str(course / "runtime") in a for a in args):
            left.append(" ".join(args))
    return left


def message_of(question: str, code: str, lesson: dict[str, str]) -> str:
    """What the kit's check says about this code: the first required failure's message."""
    space: dict = {"torch": torch}
    exec(lesson["softmax"], space)  # net calls softmax: the lesson's, as the net test cell arranges
    exec(code, space)
    result = CHECK[question](space[question], verbose=False)
    assert not result, f"the check passes {question} with this mistake:\n{code}"
    return next(c for c in result.failures if c.required).message


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    lines = assignment.write_course(folder)
    assert all(line.endswith("written") for line in lines), lines
    return folder


def test_write_course_writes_the_folder_then_keeps_an_instructors_edits(tmp_path, capsys):
    from softmax_widgets.cli import main

    folder = tmp_path / "course"
    assert main(["assignment", str(folder)]) == 0
    notebook = folder / "source" / NAME / f"{NAME}.ipynb"
    assert notebook.read_bytes() == assignment.source_notebook().read_bytes()
    assert "c.Execute.timeout" in (folder / "nbgrader_config.py").read_text()
    assert f"generate_assignment {NAME}" in capsys.readouterr().out
    assert all(line.endswith("unchanged") for line in assignment.write_course(folder))
    notebook.write_text(notebook.read_text().replace("(3 points)", "(4 points)"))
    _config, kept = assignment.write_course(folder)
    assert "(4 points)" in notebook.read_text() and "kept" in kept and "--force" in kept
    assert assignment.write_course(folder, force=True)[1].endswith("written")
    assert notebook.read_bytes() == assignment.source_notebook().read_bytes()


def test_assignment_refuses_a_file_for_a_folder(tmp_path, capsys):
    from softmax_widgets.cli import main

    (tmp_path / "notes.txt").write_text("mine")
    assert main(["assignment", str(tmp_path / "notes.txt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_committed_notebook_carries_no_outputs():
    nb = json.loads(assignment.source_notebook().read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]


def test_nbgrader_grades_the_lesson_full_marks_each_mistake_its_question_and_stops_a_loop(course):
    _, t_generate = nbgrader(course, "generate_assignment", NAME)
    release = course / "release" / NAME / f"{NAME}.ipynb"
    lesson = solutions(course / "source" / NAME / f"{NAME}.ipynb")
    assert set(lesson) == set(POINTS)

    # the student's version: no solution left, a stub in each solution cell
    text = release.read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    stubs = solutions(release)
    everything = "\n".join(cell.source for cell in nbformat.read(release, as_version=4).cells)
    for gid, code in lesson.items():
        body = [line.strip() for line in code.splitlines()[2:]]  # below the def line and the docstring
        assert body and not any(line in everything for line in body), (gid, stubs[gid])
        assert "raise NotImplementedError()" in stubs[gid]

    submit(course, release, "lesson", lesson)
    expected: dict[str, dict[str, str]] = {"lesson": {}}  # student -> {question lost: what its feedback says}
    for student, wrong in MISTAKES.items():
        submit(course, release, student, {**lesson, **wrong})
        expected[student] = {question: message_of(question, code, lesson) for question, code in wrong.items()}
    submit(course, release, "loops", {**lesson, "sgd": LOOPS})
    expected["loops"] = {"sgd": "CellTimeoutError"}
    submit(course, release, "unanswered", {})
    expected["unanswered"] = dict.fromkeys(POINTS, "NotImplementedError")

    _, t_autograde = nbgrader(course, "autograde", NAME, "--create", f"--Execute.timeout={CELL_TIMEOUT}")
    assert not kernels_left(course)  # every kernel autograde started has stopped, the looping one too
    _, t_feedback = nbgrader(course, "generate_feedback", NAME)
    print(f"\nnbgrader on {len(expected)} submissions: generate_assignment {t_generate:.1f} s, autograde "
          f"{t_autograde:.1f} s, generate_feedback {t_feedback:.1f} s", flush=True)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student, lost in expected.items():
            graded = nbformat.read(course / "autograded" / student / NAME / f"{NAME}.ipynb", as_version=4)
            feedback = (course / "feedback" / student / NAME / f"{NAME}.html").read_text()
            plain = html.unescape(re.sub(r"<[^>]+>", "", feedback))  # ANSI colours became spans around words
            for question, points in POINTS.items():
                score = gb.find_grade(f"{question}_tests", NAME, NAME, student).score
                if question in lost:
                    assert score == 0, (student, question, score)
                    errors = [o for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                              == f"{question}_tests" for o in c.outputs if o.output_type == "error"]
                    assert any(lost[question] in e.ename + e.evalue for e in errors), (student, question, errors)
                    assert lost[question] in plain, (student, question)
                else:
                    assert score == points, (student, question, score, feedback[-2000:])
            # the dashboard cell ran, on the student's own functions, and failed nothing
            dash = graded.cells[-1]
            assert "Dashboard(trainer" in dash.source
            assert dash.execution_count and not [o for o in dash.outputs if o.output_type == "error"], dash.outputs
        assert gb.find_submission(NAME, "lesson").score == sum(POINTS.values())
