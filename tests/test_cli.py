"""`softmax-widgets train` as a user runs it: a real process, the lesson's printout."""

import re
import subprocess
import sys

import pytest

from tests.conftest import FASHION_ROOT, needs_fashion

LINE = re.compile(r"^epoch (\d+), loss (\d\.\d{4}), train acc (\d\.\d{3}), test acc (\d\.\d{3}), [\d.]+ s$")


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "softmax_widgets.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def epoch_lines(stdout):
    return [LINE.match(line).groups() for line in stdout.splitlines() if LINE.match(line)]


def test_train_on_digits_prints_the_lessons_lines():
    out = run_cli("train", "--dataset", "digits", "--epochs", "3", "--batch-size", "64")
    assert out.returncode == 0, out.stderr
    lines = epoch_lines(out.stdout)
    assert [int(e) for e, *_ in lines] == [1, 2, 3]
    assert float(lines[-1][3]) > 0.8  # digits is easy
    assert "\x1b" not in out.stdout + out.stderr  # no progress bar in a pipe


def test_offline_without_data_falls_back_to_the_bundled_subset_in_one_sentence(tmp_path):
    out = run_cli("train", "--epochs", "1", "--data-dir", str(tmp_path), "--no-download")
    assert out.returncode == 0, out.stderr
    note = out.stderr.strip()
    assert note.count("\n") == 0 and "--data-dir" in note and "SOFTMAX_WIDGETS_DATA" in note
    assert str(tmp_path / "FashionMNIST" / "raw") in note
    assert "training on the bundled offline subset 'fashion-mnist-small' instead" in note
    assert "Dataset('fashion-mnist-small': 6000 train / 1000 test" in out.stdout and len(epoch_lines(out.stdout)) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "-1"], "learning rate must be a finite number > 0"),
    (["--batch-size", "0"], "batch size must be between 1 and"),
    (["--device", "tpu"], "device 'tpu'"),
])
def test_bad_arguments_say_what_to_do(args, message):
    out = run_cli("train", "--dataset", "digits", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


@needs_fashion
@pytest.mark.slow
def test_five_epochs_on_fashion_mnist_match_the_lesson():
    out = run_cli("train", "--epochs", "5", "--data-dir", str(FASHION_ROOT))
    assert out.returncode == 0, out.stderr
    epoch, loss, train_acc, test_acc = epoch_lines(out.stdout)[-1]
    assert epoch == "5" and abs(float(loss) - 0.486) <= 0.01 and abs(float(train_acc) - 0.836) <= 0.01
    assert 0.80 <= float(test_acc) <= 0.85


def test_the_launch_commands_never_import_torch():
    """`softmax-widgets lab` and `app` run beside the servers for a whole lecture: torch (~700 MB) stays out of
    them; `from softmax_widgets import Trainer` still works (the package imports its names on first use)."""
    code = ("import sys, softmax_widgets, softmax_widgets.cli, softmax_widgets.launch\n"
            "print('torch' in sys.modules)\nfrom softmax_widgets import Trainer, load_dataset, model\n"
            "print('torch' in sys.modules, Trainer.__module__, sorted(softmax_widgets.__all__) == "
            "sorted(softmax_widgets._WHERE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "True", "softmax_widgets.trainer", "True"], out.stdout + out.stderr


def test_the_cli_knows_every_dataset():
    from softmax_widgets import cli, data

    assert cli.DATASET_NAMES == tuple(data.DATASETS)
