"""A kernel driven over Jupyter server's websocket, as a page does it (JupyterLab behind JupyterHub, or Voila):
execute requests, the widget state a page mirrors, and clicks sent as the comm messages a browser sends."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import websocket  # websocket-client: a dependency of jupyter_server
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1

COUNTER = re.compile(r"batch \d+/\d+ · iteration (\d+)")  # the counter's text, its tags left out
TAG = re.compile(r"<[^>]+>")
# the protocol JupyterLab's and Voila's pages speak (binary frames: channel, header, parent, metadata, content,
# buffers). Over the legacy JSON protocol this Jupyter server stops forwarding a kernel's messages at the first one
# that carries buffers (bqplot's arrays): the page would never see its widgets
PROTOCOL = "v1.kernel.websocket.jupyter.org"


def _unpack(frame: bytes) -> dict:
    channel, parts = deserialize_msg_from_ws_v1(frame)
    header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    return {"header": header, "parent_header": parent, "metadata": metadata, "content": content,
            "channel": channel}


class KernelSocket:
    """One kernel's channels over one websocket; a reader thread keeps the widget states and the replies."""

    def __init__(self, url: str, header: list[str] | None = None, cookie: str | None = None, timeout: float = 60):
        self.session = uuid.uuid4().hex
        sep = "&" if "?" in url else "?"
        self.ws = websocket.create_connection(f"{url}{sep}session_id={self.session}", header=header or [],
                                              cookie=cookie, timeout=timeout, subprotocols=[PROTOCOL])
        self.widgets: dict[str, dict] = {}  # model id -> state
        self.names: dict[str, str] = {}  # model id -> model name
        self.idle: dict[str, float] = {}  # msg id -> time.monotonic() when the kernel went idle after it
        self.replies: dict[str, dict] = {}
        self.errors: list[str] = []
        self._lock = threading.RLock()  # cond() of wait() may read the widgets under it
        self._changed = threading.Condition(self._lock)
        self.closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ---- sending ----
    def send(self, channel: str, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "username": "student", "session": self.session,
                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": "5.3"}
        parts = [json.dumps(p).encode("utf-8") for p in (header, {}, metadata or {}, content)]
        self.ws.send_binary(serialize_msg_to_ws_v1(parts, channel))
        return msg_id

    def comm(self, comm_id: str, data: dict) -> str:
        return self.send("shell", "comm_msg", {"comm_id": comm_id, "data": data})

    def click(self, model_id: str) -> str:
        """What a browser sends when a Button is clicked (ipywidgets' 'custom' message)."""
        return self.comm(model_id, {"method": "custom", "content": {"event": "click"}})

    def execute(self, code: str, timeout: float = 300) -> dict:
        """Run `code` (a notebook cell); its reply, an error failing the caller's assert."""
        msg_id = self.send("shell", "execute_request", {"code": code, "silent": False, "store_history": True,
                                                        "user_expressions": {}, "allow_stdin": False,
                                                        "stop_on_error": True})
        return self.wait_reply(msg_id, timeout)

    def value(self, expr: str, timeout: float = 120):
        msg_id = self.send("shell", "execute_request", {
            "code": "", "silent": True, "store_history": False, "allow_stdin": False,
            "user_expressions": {"v": f"__import__('json').dumps({expr})"}})
        reply = self.wait_reply(msg_id, timeout)
        result = reply["user_expressions"]["v"]
        assert result["status"] == "ok", result
        return json.loads(eval(result["data"]["text/plain"]))  # a str's repr, from our own kernel

    def request_states(self, timeout: float = 120) -> None:
        """What a page does as it opens: ask the kernel for every widget's state (ipywidgets 8's control comm)."""
        comm_id = uuid.uuid4().hex
        self.send("shell", "comm_open", {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
                  {"version": "1.0.0"})  # the control protocol's version, which ipywidgets checks
        self.comm(comm_id, {"method": "request_states"})
        self.wait(lambda: any(n == "ButtonModel" for n in self.names.values()), timeout, "the widget states")

    # ---- reading ----
    def _read(self) -> None:
        while True:
            try:
                frame = self.ws.recv()
            except Exception:  # closed, by us or by the server
                with self._changed:
                    self.closed = True
                    self._changed.notify_all()
                return
            if not frame:
                continue
            msg = _unpack(frame) if isinstance(frame, bytes) else json.loads(frame)
            with self._changed:
                self._take(msg)
                self._changed.notify_all()

    def _take(self, msg: dict) -> None:
        kind, content = msg["header"]["msg_type"], msg["content"]
        parent = msg.get("parent_header", {}).get("msg_id")
        if kind == "status" and content.get("execution_state") == "idle" and parent:
            self.idle[parent] = time.monotonic()
        elif kind.endswith("_reply") and parent:
            self.replies[parent] = content
        elif kind == "error":
            self.errors.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            data = content["data"]
            self.widgets[content["comm_id"]] = dict(data.get("state", {}))
            self.names[content["comm_id"]] = data.get("state", {}).get("_model_name", "")
        elif kind == "comm_msg":
            data = content.get("data", {})
            if data.get("method") == "update":
                state = self.widgets.setdefault(content["comm_id"], {})
                state.update(data.get("state", {}))
                self.names.setdefault(content["comm_id"], state.get("_model_name", ""))
            elif data.get("method") == "update_states":
                for model_id, model in data["states"].items():
                    self.widgets[model_id] = dict(model.get("state", {}))
                    self.names[model_id] = model.get("model_name", "")

    def wait(self, cond, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := cond()):
                left = deadline - time.monotonic()
                assert left > 0 and not self.closed, f"waited {timeout:.0f} s for {what} (closed: {self.closed})"
                self._changed.wait(min(left, 1.0))
        return result

    def wait_reply(self, msg_id: str, timeout: float = 120) -> dict:
        reply = self.wait(lambda: self.replies.get(msg_id), timeout, "a reply")
        assert reply["status"] == "ok", (reply, self.errors)
        return reply

    def wait_idle(self, msg_id: str, timeout: float = 60) -> float:
        """time.monotonic() when the kernel had handled the message (its idle status after it)."""
        return self.wait(lambda: self.idle.get(msg_id), timeout, "the kernel to handle a message")

    # ---- the dashboard as a page shows it ----
    def button(self, description: str) -> str:
        with self._lock:
            found = [i for i, s in self.widgets.items() if self.names.get(i) == "ButtonModel"
                     and s.get("description") == description]
        assert found, f"no button {description!r} on the page"
        return found[0]

    def iteration(self) -> int:
        """The iteration the dashboard's counter shows ("epoch 1 · batch 3/24 · iteration 3")."""
        with self._lock:
            shown = [int(m.group(1)) for s in self.widgets.values() if isinstance(s.get("value"), str)
                     for m in [COUNTER.search(TAG.sub("", s["value"]))] if m]
        return max(shown, default=-1)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._reader.join(5)
