"""A real ipykernel driven through jupyter_client, the way a notebook front end drives it (shared by tests)."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator

from .conftest import REPO


def start_kernel(setup: str | None = None) -> Iterator:
    """Yield (manager, client) of a fresh python3 kernel in the repository (a pytest fixture's body)."""
    import jupyter_client

    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(REPO))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        if setup:
            run(kc, setup)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc, code: str) -> tuple[str, list[dict]]:
    """Execute `code`; returns its stdout and every iopub message it caused (an error fails the test)."""
    out, err, msgs = [], [], []

    def hook(msg):
        msgs.append(msg)
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            err.append(f"{content['ename']}: {content['evalue']}")

    reply = kc.execute_interactive(code, output_hook=hook, timeout=120)
    assert reply["content"]["status"] == "ok" and not err, err or reply["content"]
    return "".join(out), msgs


def value(kc, expr: str):
    """`expr` evaluated in the kernel, read from the execute reply (stdout can arrive after idle under load)."""
    for _ in range(3):  # a request that arrives while the kernel aborts after an error is answered 'aborted'
        reply = kc.execute_interactive("", user_expressions={"v": f"__import__('json').dumps({expr})"},
                                       timeout=120, output_hook=lambda msg: None)
        if reply["content"]["status"] != "aborted":
            break
    assert "user_expressions" in reply["content"], f"value({expr!r}) got {reply['content']}"
    result = reply["content"]["user_expressions"]["v"]
    assert result["status"] == "ok", result
    return json.loads(ast.literal_eval(result["data"]["text/plain"]))


def click(kc, model_id: str) -> None:
    """The comm message a browser sends when a Button is clicked (ipywidgets' 'custom' message)."""
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": {
        "method": "custom", "content": {"event": "click"}}}))
