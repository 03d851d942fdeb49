"""One student's kernel: the kit's memory over `import torch` and its start-up, today's code beside this one.

Usage: python benchmarks/bench_kernel.py [--data-dir ../shared/data] [--today REV|PATH] [--python EXE ...]
       [--iterations 300] [--repeats 3]

Every figure comes from a fresh process (RSS is a process's, and a second load in one process finds its caches
warm). Each process: `import torch`, then the kit: load the full Fashion-MNIST from the idx files on disk,
build a Trainer (and, in the "dashboard" scene, the Dashboard, headless), train `--iterations` iterations and
evaluate. "kit MB" is VmRSS at the end minus VmRSS after `import torch`; "peak" is VmHWM minus the same; "anon"
is RssAnon's growth alone: the private memory a student's kernel really adds (RSS also counts pages of torch's
shared libraries, which the kernel may evict under memory pressure, so RSS alone can swing by hundreds of MB on a
busy machine; medians of fresh processes smooth it); "start-up" is the seconds from the end of `import torch` to
a Trainer (or Dashboard) ready to step.

Today's code is a git worktree of an older commit (`--today`, default: the commit before the idx reader came),
so both run in the same run on the same machine; each python (default: this one and /tmp/venv-cpu's, the CPU
build of torch, which has no torchvision beside it) runs both. Runs alternate today/now so a busy machine slows
both alike; the figures are medians over `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPU_VENV = Path("/tmp/venv-cpu/bin/python")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))

rss_torch, anon_torch = status("VmRSS:"), status("RssAnon:")
scene, root, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    from softmax_widgets import Trainer, load_dataset
    data = load_dataset("fashion-mnist", root=root, download=False)
    t = Trainer(data)
    if scene == "dashboard":
        from softmax_widgets.app import Dashboard
        dash = Dashboard(t)
    t2 = time.perf_counter()
    for _ in range(iterations):
        t.train_step()
    acc = t.evaluate()
except Exception as err:  # today's code on the CPU build: no torchvision to read the files with
    print(json.dumps({"error": f"{type(err).__name__}: {str(err).splitlines()[-1] if str(err) else ''}"[:200]}))
    sys.exit(0)
print(json.dumps({
    "import_torch_s": t1 - t0, "startup_s": t2 - t1, "rss_torch": rss_torch,
    "kit_mb": status("VmRSS:") - rss_torch, "peak_mb": status("VmHWM:") - rss_torch,
    "anon_mb": status("RssAnon:") - anon_torch,
    "loss": t.history.loss[-1], "test_acc": acc, "torch": torch.__version__,
    "torchvision": "torchvision" in sys.modules, "dynamo": "torch._dynamo" in sys.modules,
}))
"""


def today_tree(rev: str | None) -> tuple[Path, str, tempfile.TemporaryDirectory | None]:
    """A checkout of today's code: a folder as given, or a git worktree of `rev` made for this run."""
    if rev and Path(rev).is_dir():
        return Path(rev), rev, None
    if rev is None:  # the commit before the idx reader came: what the light kernel is measured against
        first = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "softmax_widgets/_idx.py"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
        if not first:
            sys.exit("no commit adds softmax_widgets/_idx.py here: pass --today REV or a folder")
        rev = first[-1] + "^"
    tmp = tempfile.TemporaryDirectory(prefix="bench-kernel-today-")
    path = Path(tmp.name) / "today"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=REPO, check=True)
    label = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True).stdout
    return path, label.strip(), tmp


def run_child(python: str, code: Path, scene: str, root: str, iterations: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code))
    env.pop("SOFTMAX_WIDGETS_DATA", None)
    out = subprocess.run([python, "-c", CHILD, scene, root, str(iterations)], capture_output=True, text=True,
                         env=env, cwd=code, timeout=600)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["exit " + str(out.returncode)])[-1][:200]}
    return json.loads(lines[-1])


def has(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--today", default=None, help="a git revision or a folder holding today's code")
    ap.add_argument("--python", nargs="*", default=None, help="interpreters (default: this one and the CPU venv)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenes", nargs="*", default=["core", "dashboard"])
    args = ap.parse_args()
    pythons = args.python or [sys.executable] + ([str(CPU_VENV)] if CPU_VENV.exists() else [])
    today, label, tmp = today_tree(args.today)
    try:
        codes = {f"today ({label})": today, "now": REPO}
        print(f"Fashion-MNIST from {args.data_dir}, {args.iterations} iterations, batch 256, median of "
              f"{args.repeats} fresh processes each; load average {os.getloadavg()[0]:.1f}")
        for python in pythons:
            for scene in args.scenes:
                if scene == "dashboard" and not has(python, "ipywidgets"):
                    print(f"\n{python}: no ipywidgets, the dashboard scene is skipped")
                    continue
                results: dict[str, list[dict]] = {name: [] for name in codes}
                for _ in range(args.repeats):
                    for name, code in codes.items():
                        results[name].append(run_child(python, code, scene, args.data_dir, args.iterations))
                report(python, scene, results)
    finally:
        if tmp is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(today)], cwd=REPO)
            tmp.cleanup()


def report(python: str, scene: str, results: dict[str, list[dict]]) -> None:
    ok = {name: [r for r in runs if "error" not in r] for name, runs in results.items()}
    sample = next((runs[0] for runs in ok.values() if runs), None)
    every = [r for runs in ok.values() for r in runs]
    build = (f"torch {sample['torch']}, import torch {median(every, 'import_torch_s'):.2f} s, "
             f"{median(every, 'rss_torch'):.0f} MB") if sample else "no run succeeded"
    print(f"\n{python} ({build}), scene: {scene}")
    print(f"  {'code':<18} {'kit MB':>7} {'peak MB':>8} {'anon MB':>8} {'start-up s':>11} {'torchvision':>12} "
          f"{'dynamo':>7} {'loss':>10} {'test acc':>9}")
    for name, runs in ok.items():
        if not runs:
            print(f"  {name:<18} fails: {results[name][0]['error']}")
            continue
        last = runs[-1]
        print(f"  {name:<18} {median(runs, 'kit_mb'):7.0f} {median(runs, 'peak_mb'):8.0f} "
              f"{median(runs, 'anon_mb'):8.0f} {median(runs, 'startup_s'):11.2f} "
              f"{last['torchvision']!s:>12} {last['dynamo']!s:>7} "
              f"{last['loss']:10.4f} {last['test_acc']:9.4f}")
    names = list(ok)
    if all(ok[n] for n in names) and len(names) == 2:
        a, b = ok[names[0]], ok[names[1]]
        same = a[-1]["loss"] == b[-1]["loss"] and a[-1]["test_acc"] == b[-1]["test_acc"]
        print(f"  now / today: memory {median(b, 'kit_mb') / median(a, 'kit_mb'):.2f}x, start-up "
              f"{median(b, 'startup_s') / median(a, 'startup_s'):.2f}x (targets: <= 150 MB, <= 0.7x); "
              f"the same loss and test accuracy, bit for bit: {same}")


if __name__ == "__main__":
    main()
