"""Play with every plot attached: iterations/s, bytes sent to the browser, kernel RSS, and Pause latency.

Run: .venv/bin/python benchmarks/bench_dashboard.py [--iterations 10000] [--batch-size 256] [--dataset fashion-mnist]
Fashion-MNIST comes from $SOFTMAX_WIDGETS_DATA or ../shared/data (falls back to digits, and says so).
The widgets' comms are replaced by recording ones, so every byte a kernel would send is counted
(JSON of each message + its binary buffers), exactly what ipywidgets hands to the kernel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import comm
from comm.base_comm import BaseComm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class RecordingComm(BaseComm):
    """A comm that keeps count of what it would send to the front end."""

    bytes = 0
    messages = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        size = len(json.dumps(data, default=str)) + sum(memoryview(b).nbytes for b in buffers or ())
        RecordingComm.bytes += size
        RecordingComm.messages += 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def data_root() -> Path | None:
    for cand in (os.environ.get("SOFTMAX_WIDGETS_DATA"), ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / "FashionMNIST" / "raw").exists():
            return Path(cand)
    return None


async def play_until(dash, iterations: int) -> float:
    """Play until `iterations` more are done; returns the seconds it took."""
    target = dash.trainer.iteration + iterations
    play_until.cpu = time.process_time()
    start = time.perf_counter()
    dash.play()
    while dash.trainer.iteration < target and (dash.is_playing or dash.player.task is None):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    play_until.cpu = time.process_time() - play_until.cpu
    dash.pause()
    while dash.player.task is not None and not dash.player.task.done():
        await asyncio.sleep(0.001)
    return elapsed


async def main(args) -> None:
    comm.create_comm = RecordingComm  # every widget made from here on records its messages
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from softmax_widgets import Trainer, load_dataset
    from softmax_widgets.app import Dashboard

    root = data_root()
    name = args.dataset if (root or args.dataset == "digits") else "digits"
    data = load_dataset(name, root=root, download=False)
    print(f"dataset {data.name}, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
          f"python {sys.version.split()[0]}")

    bare = Trainer(data, batch_size=args.batch_size)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(500):
        bare.train_step()
    bare_rate, bare_cpu = 500 / (time.perf_counter() - t0), 500 / (time.process_time() - c0)

    t0 = time.perf_counter()
    dash = Dashboard(Trainer(data, batch_size=args.batch_size))
    build = time.perf_counter() - t0
    built_bytes = RecordingComm.bytes
    print(f"build: {build:.2f} s, {built_bytes / 1e6:.2f} MB of widget state")

    # throughput and bytes over 5,000 iterations of Play at max speed
    RecordingComm.bytes = RecordingComm.messages = 0
    secs = await play_until(dash, 5000)
    n = dash.trainer.iteration
    print(f"Play, all plots attached: {n / secs:.0f} iterations/s wall, {n / play_until.cpu:.0f} per CPU second "
          f"(bare train_step loop: {bare_rate:.0f}/s wall, {bare_cpu:.0f} per CPU second; target >= 300/s)")
    print(f"sent per 5,000 iterations: {RecordingComm.bytes / 1e6:.2f} MB in {RecordingComm.messages} messages, "
          f"{RecordingComm.bytes / secs / 1e3:.0f} kB/s, {RecordingComm.bytes / 5000:.0f} B/iteration "
          "(target <= 2 MB; pushes wait for both time and iterations, so this holds at any speed)")

    # memory: RSS before / after 10,000 more iterations
    rss0 = rss_mb()
    await play_until(dash, args.iterations)
    rss1 = rss_mb()
    print(f"kernel RSS: {rss0:.0f} MB before, {rss1:.0f} MB after {args.iterations} iterations "
          f"({rss1 - rss0:+.1f} MB)")

    # Pause latency: how long after pause() the last step ran, and when the final push was done
    lat, done = [], []
    for _ in range(5):
        dash.play()
        await asyncio.sleep(0.3)
        dash.pause()
        t_pause = dash.pause_time
        while dash.player.task is not None and not dash.player.task.done():
            await asyncio.sleep(0.0005)
        done.append(time.time() - t_pause)
        lat.append(dash.last_step_time - t_pause)
    print(f"pause(): last step {max(lat) * 1000:+.1f} ms after it (worst of 5; negative = before), "
          f"Play stopped and final push sent {max(done) * 1000:.1f} ms after it (target <= 200 ms)")
    h = dash.trainer.history
    print(f"after {dash.trainer.epoch} epochs: test acc {h.test_acc[-1]:.3f}" if h.test_acc else "")
    dash.close()


# ---- issue 12: the Graph panel costs Play nothing while its tab is closed ----
# Run: .venv/bin/python benchmarks/bench_dashboard.py --graph-panel [--rounds 15] [--iterations 300]
GRAPH_CONFIGS = {"without": "graph panel's listener removed", "closed": "graph tab closed (the default)",
                 "open": "graph tab open (redrawn <= 4 times a second)", "bare": "no graph panel, no math line"}


async def graph_panel_cost(data, batch_size: int, rounds: int, iterations: int) -> dict[str, dict[str, list]]:
    """Play at max speed on four dashboards, in short slices interleaved round by round (the order rotates), so
    a busy machine slows all four alike; per slice: iterations per wall second and per CPU second."""
    from softmax_widgets import Trainer
    from softmax_widgets.app import Dashboard

    dashes = {name: Dashboard(Trainer(data, batch_size=batch_size)) for name in GRAPH_CONFIGS}
    for name in ("without", "bare"):
        dashes[name].graph.close()  # as if there were no panel: its listener is gone
    dashes["bare"].math.close()
    for d in dashes.values():
        d.controls.speed.value = "max"
    dashes["open"].views.select("graph")
    assert dashes["open"].graph.visible, "the graph tab is not mounted"
    rates: dict[str, dict[str, list]] = {name: {"wall": [], "cpu": []} for name in dashes}
    for r in range(rounds + 1):  # round 0 warms up (caches, the first evaluation) and is not counted
        order = list(dashes)[r % 4:] + list(dashes)[:r % 4]
        for name in order:
            secs = await play_until(dashes[name], iterations)
            if r:
                rates[name]["wall"].append(iterations / secs)
                rates[name]["cpu"].append(iterations / play_until.cpu)
    for d in dashes.values():
        d.close()
    return rates


def graph_panel_main() -> None:
    from statistics import median, quantiles

    p = argparse.ArgumentParser(description="Play's speed with the Graph panel closed, open and without it")
    p.add_argument("--graph-panel", action="store_true")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--iterations", type=int, default=300, help="iterations per slice")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dataset", default="fashion-mnist")
    args = p.parse_args()
    comm.create_comm = RecordingComm  # widgets send nowhere; their messages are still built and counted
    import torch

    torch.set_num_threads(1)
    from softmax_widgets import load_dataset

    root = data_root()
    name = args.dataset if (root or args.dataset == "digits") else "digits"
    data = load_dataset(name, root=root, download=False)
    rates = asyncio.run(graph_panel_cost(data, args.batch_size, args.rounds, args.iterations))
    print(f"dataset {data.name}, batch {args.batch_size}; Play at max speed in {args.rounds} interleaved rounds "
          f"of {args.iterations} iterations; iterations per wall second | per CPU second: median [quartiles] best")
    base = {k: median(v) for k, v in rates["without"].items()}
    for key, words in GRAPH_CONFIGS.items():
        cols = []
        for kind in ("wall", "cpu"):
            v = rates[key][kind]
            q1, _, q3 = quantiles(v, n=4)
            cols.append(f"{median(v):5.0f} [{q1:.0f}-{q3:.0f}] {max(v):.0f} {median(v) / base[kind] - 1:+6.1%}")
        print(f"  {key:8s} {cols[0]} | {cols[1]}   {words}")
    print(hidden_listener_cost(data, args.batch_size))


def hidden_listener_cost(data, batch_size: int, calls: int = 200_000) -> str:
    """What a closed panel adds per iteration, measured directly: its listener on five phase events (and the
    math line's, on a running loop as in a kernel, where its throttle holds redraws back to 10 a second)."""
    import timeit

    from softmax_widgets import Event, Phase, Trainer
    from softmax_widgets.ui.graph_panel import GraphPanel, MathLine

    async def measure() -> tuple[float, float, float]:
        t = Trainer(data, batch_size=batch_size)
        panel, math_line = GraphPanel(t), MathLine(t)  # the panel hidden until set_visible(True)
        events = [Event("phase", p, "") for p in Phase]
        step = min(timeit.repeat(t.train_step, number=50, repeat=3)) / 50
        per_event = min(timeit.repeat(lambda: [panel._on_change(t, e) for e in events], number=calls // 5,
                                      repeat=3)) / calls
        math_line.refresh()
        math_line._draw()  # the next events arrive within the interval: held back
        held = min(timeit.repeat(lambda: [math_line._on_change(t, e) for e in events], number=calls // 5,
                                 repeat=3)) / calls
        panel.close()
        math_line.close()
        return step, per_event, held

    step, per_event, held = asyncio.run(measure())
    return (f"closed graph panel: {per_event * 1e9:.0f} ns per event, {5 * per_event * 1e6:.2f} µs per iteration "
            f"(5 events) = {5 * per_event / step:.3%} of a train_step ({step * 1e3:.2f} ms); the math line "
            f"between its redraws: {held * 1e9:.0f} ns per event")


if __name__ == "__main__" and "--graph-panel" in sys.argv:
    graph_panel_main()
    sys.exit(0)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dataset", default="fashion-mnist")
    # 1: on this 2-core machine shared with the browser, two BLAS threads fight everything else (10x slower)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    asyncio.run(main(p.parse_args()))
