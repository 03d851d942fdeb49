"""Seconds per epoch: the lesson's DataLoader loop vs the one-tensor probe vs the Trainer, in one run.

Usage: python benchmarks/bench_core.py [--data-dir ../shared/data] [--epochs 3] [--device cpu] [--model mlp]
Runs ../shared/bench/seed_reference.py and limit_probe.py as they are (each in its own process, like the
Trainer's run), then prints a table, the ratios and the median latency of train_step() and of each phase.
--model mlp: the MLP from scratch (hidden 256) instead, against a probe in the same process (the same arithmetic
with the data in one float tensor), and train_step against the bare operations.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "bench"
EPOCH_S = re.compile(r"epoch (\d+),.*epoch_s ([\d.]+)")


def run_reference(bench: str, script: str, args: list[str]) -> list[float]:
    out = subprocess.run([sys.executable, str(Path(bench) / script), *args], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{script} failed:\n{out.stderr}")
    return [float(m.group(2)) for m in map(EPOCH_S.search, out.stdout.splitlines()) if m]


def trainer_figures(data_dir: str, epochs: int, device: str) -> dict:
    """Runs in a child process: epoch seconds, then per-call latencies on a warm Trainer."""
    import torch

    from softmax_widgets import Trainer, load_dataset, model
    from softmax_widgets.data import as_float
    from softmax_widgets.undo import SnapshotRing

    data = load_dataset("fashion-mnist", root=data_dir, download=False)
    t = Trainer(data, device=device)
    sync = torch.cuda.synchronize if t.device.type == "cuda" else (lambda: None)
    epochs_s = []
    for _ in range(epochs):
        start = time.perf_counter()
        t.run_epoch()
        sync()
        epochs_s.append(time.perf_counter() - start)
    # train_step interleaved in blocks with two baselines, so machine noise hits all three alike:
    # the Trainer with undo switched off, and the same arithmetic written bare (no Trainer at all)
    no_undo = Trainer(data, device=device)
    no_undo.snapshots = SnapshotRing(0)
    W, b = (p.detach().clone().requires_grad_() for p in (t.W, t.b))
    x, y, order = t.pixels_train, t.y_train, torch.randperm(t.num_train)  # uint8: converted per batch, as t does

    def bare(i: int) -> None:
        idx = order[(i * 256) % (t.num_train - 256):][:256]
        loss = model.cross_entropy(model.net(as_float(x.index_select(0, idx)), W, b), y.index_select(0, idx)).sum()
        loss.item()
        if W.grad is not None:
            W.grad.zero_(), b.grad.zero_()
        loss.backward()
        model.sgd([W, b], 0.1, 256)

    steps: dict[str, list[float]] = {"trainer": [], "no_undo": [], "bare": []}
    calls = {"trainer": lambda i: t.train_step(), "no_undo": lambda i: no_undo.train_step(), "bare": bare}
    for block in range(10):
        for name, call in calls.items():
            for i in range(50):
                start = time.perf_counter()
                call(block * 50 + i)
                sync()
                steps[name].append(time.perf_counter() - start)
    phases: dict[str, list[float]] = {p: [] for p in ("next_batch", "forward", "zero_grad", "backward", "sgd")}
    for _ in range(300):
        for name, times in phases.items():
            start = time.perf_counter()
            getattr(t, name)()
            sync()
            times.append(time.perf_counter() - start)
    return {"epoch_s": epochs_s, "train_step_ms": 1e3 * statistics.median(steps["trainer"]),
            "no_undo_ms": 1e3 * statistics.median(steps["no_undo"]), "bare_ms": 1e3 * statistics.median(steps["bare"]),
            "phase_us": {k: 1e6 * statistics.median(v) for k, v in phases.items()},
            "last": str(t.last_epoch)}


def mlp_figures(data_dir: str, epochs: int, device: str) -> dict:
    """Runs in a child process: the Trainer's MLP epochs against the probe's, interleaved, then train_step."""
    import torch
    from torch.nn import functional as F

    from softmax_widgets import Trainer, load_dataset, model
    from softmax_widgets.data import as_float
    from softmax_widgets.models import MLP, relu

    data = load_dataset("fashion-mnist", root=data_dir, download=False)
    t = Trainer(data, device=device, model=MLP(hidden=256))
    sync = torch.cuda.synchronize if t.device.type == "cuda" else (lambda: None)
    x, y = as_float(t.pixels_train), t.y_train  # the probe: the whole set as one float tensor, converted once
    xt, yt = as_float(t.pixels_test), t.y_test
    g = torch.Generator().manual_seed(1)
    P = [p.detach().clone().requires_grad_() for p in t.params.values()]

    def net(X):
        return relu(X @ P[0] + P[1]) @ P[2] + P[3]

    def probe_epoch() -> None:
        order = torch.randperm(len(y), generator=g).to(t.device)
        for i in range(0, len(y), 256):
            idx = order[i:i + 256]
            loss = F.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx), reduction="sum")
            loss.item()  # the Trainer reads the loss every iteration: so does the probe
            for p in P:
                p.grad = None
            loss.backward()
            model.sgd(P, 0.1, len(idx))
        with torch.no_grad():
            float((net(xt).argmax(dim=1) == yt).float().mean())

    rows: dict[str, list[float]] = {"probe": [], "trainer": []}
    for _ in range(epochs):  # interleaved: machine noise hits both alike
        for name, run in (("probe", probe_epoch), ("trainer", t.run_epoch)):
            start = time.perf_counter()
            run()
            sync()
            rows[name].append(time.perf_counter() - start)
    order = torch.randperm(len(y))

    def bare(i: int) -> None:
        idx = order[(i * 256) % (len(y) - 256):][:256]
        loss = F.cross_entropy(net(as_float(t.pixels_train.index_select(0, idx))), y.index_select(0, idx),
                               reduction="sum")
        loss.item()
        for p in P:
            if p.grad is not None:
                p.grad.zero_()
        loss.backward()
        model.sgd(P, 0.1, 256)

    steps: dict[str, list[float]] = {"trainer": [], "bare": []}
    for block in range(6):
        for name, call in (("trainer", lambda i: t.train_step()), ("bare", bare)):
            for i in range(30):
                start = time.perf_counter()
                call(block * 30 + i)
                sync()
                steps[name].append(time.perf_counter() - start)
    return {"rows": rows, "train_step_ms": 1e3 * statistics.median(steps["trainer"]),
            "bare_ms": 1e3 * statistics.median(steps["bare"]), "last": str(t.last_epoch)}


def main_mlp(a) -> None:
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}, {a.epochs} epochs, "
          "MLP(hidden=256)")
    child = subprocess.run([sys.executable, __file__, "--child", "--model", "mlp", "--data-dir", a.data_dir,
                            "--epochs", str(a.epochs), "--device", a.device], capture_output=True, text=True,
                           check=True)
    fig = json.loads(child.stdout.strip().splitlines()[-1])
    med = {k: statistics.median(v[1:] or v) for k, v in fig["rows"].items()}
    print(f"\n{'seconds per MLP epoch (train + test eval)':44s} {'median':>8s} {'best':>8s}   all")
    for k, v in fig["rows"].items():
        print(f"{k:44s} {med[k]:8.3f} {min(v):8.3f}   {' '.join(f'{x:.3f}' for x in v)}")
    print(f"MLP Trainer / probe: {med['trainer'] / med['probe']:.2f} (target <= 1.3)")
    print(f"median MLP train_step: {fig['train_step_ms']:.3f} ms; the bare operations {fig['bare_ms']:.3f} ms "
          f"({fig['train_step_ms'] / fig['bare_ms']:.2f}x)")
    print(f"Trainer after the timed epochs: {fig['last']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-lesson", action="store_true", help="the lesson's loop takes ~10 s an epoch on 2 cores")
    ap.add_argument("--bench-dir", default=str(BENCH), help="folder of seed_reference.py and limit_probe.py")
    ap.add_argument("--model", choices=["lesson", "mlp"], default="lesson", help="mlp: the MLP from scratch")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child and a.model == "mlp":
        print(json.dumps(mlp_figures(a.data_dir, a.epochs, a.device)))
        return
    if a.model == "mlp":
        main_mlp(a)
        return
    if a.child:
        print(json.dumps(trainer_figures(a.data_dir, a.epochs, a.device)))
        return
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}, {a.epochs} epochs")
    rows = {}
    if not a.skip_lesson:
        rows["lesson (DataLoader + ToTensor)"] = run_reference(a.bench_dir, "seed_reference.py",
                                                               [a.data_dir, str(a.epochs)])
    rows["probe (one tensor, F.cross_entropy)"] = run_reference(a.bench_dir, "limit_probe.py",
                                                                 [a.data_dir, str(a.epochs), a.device])
    child = subprocess.run([sys.executable, __file__, "--child", "--data-dir", a.data_dir, "--epochs",
                            str(a.epochs), "--device", a.device], capture_output=True, text=True, check=True)
    fig = json.loads(child.stdout.strip().splitlines()[-1])
    rows["softmax_widgets Trainer"] = fig["epoch_s"]
    # the first epoch pays one-off costs (allocator, page faults): medians use epochs 2+ when there are any
    med = {k: statistics.median(v[1:] or v) for k, v in rows.items()}
    print(f"\n{'seconds per epoch (train + test eval)':40s} {'median':>8s} {'best':>8s}   all")
    for k, v in rows.items():
        print(f"{k:40s} {med[k]:8.3f} {min(v):8.3f}   {' '.join(f'{x:.3f}' for x in v)}")
    tr = med["softmax_widgets Trainer"]
    if not a.skip_lesson:
        print(f"\nTrainer vs lesson: {med['lesson (DataLoader + ToTensor)'] / tr:.1f}x faster (target >= 12x)")
    print(f"Trainer / probe: {tr / med['probe (one tensor, F.cross_entropy)']:.2f} (target <= 1.3)")
    print(f"median train_step: {fig['train_step_ms']:.3f} ms at batch 256 (target < 1 ms); "
          f"undo off {fig['no_undo_ms']:.3f} ms; the same arithmetic with no Trainer {fig['bare_ms']:.3f} ms")
    print(f"train_step / bare arithmetic: {fig['train_step_ms'] / fig['bare_ms']:.2f} (target <= 1.35; "
          f"undo off: {fig['no_undo_ms'] / fig['bare_ms']:.2f})")
    print("median per phase (us): " + ", ".join(f"{k} {v:.0f}" for k, v in fig["phase_us"].items()))
    print(f"Trainer after the timed epochs: {fig['last']}")


if __name__ == "__main__":
    main()
