"""Soak: Play for N epochs in a real ipykernel with every plot attached; memory, bytes and speed over time.

    .venv/bin/python benchmarks/soak.py                 # 50 epochs of Fashion-MNIST (digits if absent)
    .venv/bin/python benchmarks/soak.py --epochs 5      # a short run
    .venv/bin/python benchmarks/soak.py --dataset digits

Prints the kernel's RSS growth after warm-up (target < 50 MB), bytes sent to the front end per second, and
iterations/s of the last epoch against the first (target: within 10 %). A second client counts what every
browser tab would receive on iopub; Play is started with the comm message a browser's click sends.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

import jupyter_client

REPO = Path(__file__).resolve().parents[1]
WARMUP_EPOCHS = 2  # allocator pools, the undo ring and bqplot's first big arrays settle in these

KERNEL_SETUP = """
import json, time, torch
torch.set_num_threads({threads})
from IPython.display import display
from softmax_widgets import Trainer, load_dataset
from softmax_widgets.app import Dashboard

def _rss():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmRSS'))

data = load_dataset({dataset!r}, root={root!r}, download=False)
trainer = Trainer(data, lr=0.1, batch_size=256)
dash = Dashboard(trainer)
dash.controls.speed.value = 'max'
marks = []  # (epoch, iteration, perf_counter, rss, kernel CPU seconds) at each epoch end

def _on_epoch(t, event):
    if event.kind == 'epoch':
        marks.append((t.epoch, t.iteration, time.perf_counter(), _rss(), time.process_time()))
        if t.epoch >= {epochs}:
            dash.pause()  # what a student's Pause click does: clears the flag Play checks every step

trainer.on_change(_on_epoch)
display(dash)
marks.append((0, 0, time.perf_counter(), _rss(), time.process_time()))
print(json.dumps(dict(play=dash.buttons['play'].model_id, name=data.name)))
"""


def execute(kc, code: str) -> str:
    out, err = [], []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            err.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    kc.execute_interactive(code, output_hook=hook, timeout=300)
    if err:
        raise RuntimeError(err)
    return "".join(out)


class IopubCounter(threading.Thread):
    """A second client: counts the messages and bytes a front end would receive."""

    def __init__(self, km):
        super().__init__(daemon=True)
        self.kc = km.client()
        self.kc.start_channels(shell=False, stdin=False, hb=False, control=False)
        self.bytes = self.msgs = 0
        self.counting = False
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except Exception:  # queue.Empty
                continue
            if self.counting and msg["msg_type"] == "comm_msg":
                self.msgs += 1
                self.bytes += len(json.dumps(msg["content"])) + sum(len(b) for b in msg.get("buffers", []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50, help="epochs of Play (default 50)")
    ap.add_argument("--dataset", default=None, help="fashion-mnist (default when found) or digits")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the kernel (default 1)")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.conftest import FASHION_ROOT

    dataset = args.dataset or ("fashion-mnist" if FASHION_ROOT else "digits")
    root = str(FASHION_ROOT) if FASHION_ROOT else None
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(REPO))
    kc = km.client()
    kc.start_channels()
    counter = IopubCounter(km)
    try:
        kc.wait_for_ready(timeout=120)
        counter.start()
        setup = KERNEL_SETUP.format(dataset=dataset, root=root, threads=args.threads, epochs=args.epochs)
        ids = json.loads(execute(kc, setup).strip().splitlines()[-1])
        time.sleep(1.0)
        counter.counting = True
        start = time.perf_counter()
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": ids["play"], "data": {
            "method": "custom", "content": {"event": "click"}}}))  # the browser's Play click
        while True:
            time.sleep(1.0)
            epoch, playing = json.loads(execute(kc, "print(json.dumps([trainer.epoch, dash.is_playing]))"))
            print(f"\r  epoch {epoch}/{args.epochs}  {time.perf_counter() - start:6.0f} s", end="", flush=True)
            if not playing:
                break
        time.sleep(1.0)
        counter.counting = False
        marks = json.loads(execute(kc, "print(json.dumps(marks))").strip().splitlines()[-1])
        status = json.loads(execute(kc, "print(json.dumps([dash.is_playing, dash.status]))").strip())
    finally:
        counter.stop = True
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    print()
    seconds = marks[-1][2] - marks[0][2]  # kernel clock: from Play's start to the last epoch's end
    rates, cpu = [], []  # iterations/s per epoch (wall clock), kernel CPU ms per iteration
    for (_, it0, t0, _, c0), (_, it1, t1, _, c1) in itertools.pairwise(marks):
        rates.append((it1 - it0) / (t1 - t0))
        cpu.append((c1 - c0) * 1e3 / (it1 - it0))
    warm = marks[min(WARMUP_EPOCHS, len(marks) - 1)]
    rss_growth = (marks[-1][3] - warm[3]) / 2**20
    first, last = rates[0], rates[-1]
    steady = min(WARMUP_EPOCHS, len(rates) - 1)  # epoch 1 also pays for first pushes and warm caches
    change = last / rates[steady] - 1
    print(f"soak: {dataset}, {len(rates)} epochs of Play at max speed, batch 256, all plots attached, "
          f"{args.threads} torch thread(s), {os.cpu_count()} CPU(s)")
    print(f"  wall time in Play           {seconds:8.1f} s  ({marks[-1][1]} iterations)")
    print(f"  kernel RSS                  {marks[0][3] / 2**20:8.1f} MB at start, {warm[3] / 2**20:.1f} MB after "
          f"warm-up (epoch {warm[0]}), {marks[-1][3] / 2**20:.1f} MB at the end")
    print(f"  RSS growth after warm-up    {rss_growth:8.1f} MB   (target < 50 MB: "
          f"{'ok' if rss_growth < 50 else 'OVER'})")
    print(f"  to the front end            {counter.bytes / seconds / 1e3:8.1f} kB/s in {counter.msgs / seconds:.1f} "
          f"comm messages/s ({counter.bytes / 1e6:.1f} MB in all)")
    print(f"  iterations/s                {first:8.1f} in epoch 1, {rates[steady]:.1f} in epoch {steady + 1} "
          f"(first after warm-up), {last:.1f} in epoch {len(rates)}")
    print(f"  last vs epoch 1             {last / first - 1:+8.1%}")
    print(f"  last vs first after warm-up {change:+8.1%}   (target within 10 %: "
          f"{'ok' if abs(change) <= 0.10 else 'OUT'})")
    n = max(1, len(rates) // 5)
    head, tail = sorted(rates[steady:steady + n])[n // 2], sorted(rates[-n:])[n // 2]
    print(f"  median of first / last {n:2d}    {head:8.1f} / {tail:.1f} it/s ({tail / head - 1:+.1%}: the same "
          "comparison, less sensitive to one noisy epoch on a shared CPU)")
    print(f"  per-epoch it/s min / max    {min(rates):8.1f} / {max(rates):.1f}")
    c_head, c_tail = sorted(cpu[steady:steady + n])[n // 2], sorted(cpu[-n:])[n // 2]
    print(f"  kernel CPU per iteration    {c_head:8.2f} ms in the first {n} epochs after warm-up, {c_tail:.2f} ms in "
          f"the last {n} ({c_tail / c_head - 1:+.1%}: the kernel's own work, whatever else shares the CPU)")
    print(f"  CPU share of wall time      {cpu[steady] * rates[steady] / 10:8.0f} % in epoch {steady + 1}, "
          f"{cpu[-1] * rates[-1] / 10:.0f} % in epoch {len(rates)} (below 100 %: the kernel waited for a CPU)")
    print(f"  after Pause                 playing={status[0]}, status: {status[1][:70]}")
    return 0 if rss_growth < 50 and abs(change) <= 0.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
