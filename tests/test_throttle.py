"""The one clock (throttle.Clock): many throttled calls of a dashboard wait on one timer of the kernel's loop."""

from __future__ import annotations

import asyncio

from softmax_widgets.throttle import Clock, PushClock


def test_lanes_run_at_once_then_once_when_their_interval_is_over_on_one_timer():
    async def scenario():
        clock = Clock(asyncio.get_running_loop())
        calls = {"a": 0, "b": 0}
        a = clock.lane(lambda: calls.__setitem__("a", calls["a"] + 1), 0.05)
        b = clock.lane(lambda: calls.__setitem__("b", calls["b"] + 1), 0.05)
        a()  # the first call runs at once
        for _ in range(20):  # then every call within the interval is one deferred call
            a()
            b.later()
        assert calls == {"a": 1, "b": 0} and a.pending and b.pending
        assert len(clock._wakes) == 1  # both wait on the same wake-up
        while a.pending or b.pending:
            await asyncio.sleep(0.01)
        assert calls == {"a": 2, "b": 1} and not clock._wakes
        b.later()
        clock.drop(b)  # a closed owner's lane never runs again
        await asyncio.sleep(0.1)
        assert calls["b"] == 1

    asyncio.run(scenario())


def test_without_a_running_loop_a_lane_waits_for_flush_or_runs_at_once_if_asked():
    ran = []
    clock = PushClock(10, 0.5)  # a script: no loop
    waits = clock.lane(lambda: ran.append("waits"), 1.0)
    eager = clock.lane(lambda: ran.append("eager"), 1.0, at_once_without_loop=True)
    waits()
    waits()
    eager()
    eager()
    assert ran == ["waits", "eager", "eager"] and waits.pending
    clock.flush()
    assert ran[-1] == "waits" and not waits.pending
