"""`softmax-widgets train | lab | app | assignment`: the headless lesson, JupyterLab, the dashboard as a page, or a
course folder for nbgrader."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

# data.DATASETS' names, here without importing data (and torch, ~700 MB): `lab` and `app` never train in this
# process (tests/test_cli.py checks the two lists agree)
DATASET_NAMES = ("fashion-mnist", "mnist", "kmnist", "digits", "fashion-mnist-small")


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train from scratch and print the lesson's epoch lines")
    p.add_argument("--dataset", default="fashion-mnist", choices=list(DATASET_NAMES))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder holding FashionMNIST/raw (default: $SOFTMAX_WIDGETS_DATA "
                   "or a per-user cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-download", action="store_true", help="never try the network")
    p.set_defaults(func=train)


def train(args: argparse.Namespace) -> int:
    """The lesson's loop through the Trainer, a line per epoch; offline, on the bundled Fashion-MNIST subset."""
    from .data import ENV_VAR, OFFLINE_DATASET, DatasetUnavailableError, load_dataset
    from .trainer import Trainer  # torch is imported here, not for `--help`, `lab` or `app`

    try:
        data = load_dataset(args.dataset, root=args.data_dir, download=not args.no_download)
    except DatasetUnavailableError as err:
        data = load_dataset(OFFLINE_DATASET)
        print(f"{err.name} is not in {err.folder} and could not be downloaded (--data-dir DIR or "
              f"{ENV_VAR}=DIR names the folder holding its raw/ files); training on the bundled offline subset "
              f"'{OFFLINE_DATASET}' instead ({len(data.y_train):,} of the same kind of images).", file=sys.stderr)
    try:
        trainer = Trainer(data, lr=args.lr, batch_size=args.batch_size, seed=args.seed, device=args.device)
    except ValueError as err:
        print(f"softmax-widgets train: {err}", file=sys.stderr)
        return 2
    print(f"{data!r}, lr {trainer.lr:g}, batch size {trainer.batch_size}, seed {trainer.seed}, "
          f"device {trainer.device}", flush=True)
    bar = _progress_bar(trainer)
    try:
        for epoch in range(1, args.epochs + 1):
            if bar is not None:
                bar.reset(total=trainer.batches_per_epoch)
                bar.set_description(f"epoch {epoch}")
            result = trainer.run_epoch()
            if bar is not None:
                bar.clear()
            print(f"{result}, {result.seconds:.2f} s", flush=True)
    except KeyboardInterrupt:
        print(f"\nstopped at epoch {trainer.epoch + 1}, iteration {trainer.iteration}", file=sys.stderr)
        return 130
    except RuntimeError as err:  # DivergenceError and friends: say why, keep what was printed
        print(f"softmax-widgets train: {err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    return 0


def _progress_bar(trainer):
    """A tqdm bar advanced by sgd events, on a terminal only (pipes and CI get clean lines)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=trainer.batches_per_epoch, leave=False, unit="batch", mininterval=0.2)
    trainer.on_change(lambda t, e: bar.update() if e.phase is not None and e.phase.value == "sgd"
                      and e.kind == "phase" else None)
    return bar


def _launch_parsers(sub) -> None:
    from . import launch  # standard library only: cheap for --help

    p = sub.add_parser("lab", help="copy the example notebooks into a work folder (./notebooks) and open JupyterLab "
                       "on the dashboard")
    launch.add_lab_arguments(p)
    p.set_defaults(func=launch.run_lab)
    p = sub.add_parser("app", help="serve the dashboard alone as a web page (Voila)")
    launch.add_app_arguments(p)
    p.set_defaults(func=launch.run_app)
    from . import assignment  # standard library only, like launch

    p = sub.add_parser("assignment", help="write a course folder for nbgrader: the lesson as a graded assignment")
    assignment.add_arguments(p)
    p.set_defaults(func=assignment.run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="softmax-widgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _launch_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
