"""What undo costs: median train_step with the snapshot hooks vs the bare phases, interleaved in one process.

Usage: python benchmarks/bench_undo.py [--data-dir ../shared/data] [--threads 2] [--rounds 40]
The bare Trainer is the same class with the phases unwrapped (functools.wraps keeps them as __wrapped__),
so the only difference is the hooks. Also prints the snapshot memory after 120 iterations.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from softmax_widgets import Phase, Trainer, load_dataset

REPO = Path(__file__).resolve().parents[1]


class BareTrainer(Trainer):
    """The Trainer without undo's hooks."""


for _phase in Phase:
    setattr(BareTrainer, _phase.value, getattr(Trainer, _phase.value).__wrapped__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", root=args.data_dir, download=False)
    bs = args.batch_size
    trainers = {"bare": BareTrainer(data, batch_size=bs), "undo": Trainer(data, batch_size=bs)}
    for t in trainers.values():
        for _ in range(130):  # fill the ring: the steady state is what a long Play session sees
            t.train_step()
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(args.rounds):  # interleaved: both see the same machine load
        for name, t in trainers.items():
            for _ in range(25):
                start = time.perf_counter()
                t.train_step()
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"median train_step, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{len(times['bare'])} steps each: bare {med['bare']:.3f} ms, with undo {med['undo']:.3f} ms "
          f"(+{1e3 * (med['undo'] - med['bare']):.0f} us)")
    ring = trainers["undo"].snapshots
    print(f"snapshot memory: {ring.nbytes / 1e6:.1f} MB for {ring.iterations} iterations ({len(ring)} phases)")


if __name__ == "__main__":
    main()
