"""deploy/: the zero-to-jupyterhub values use keys the chart knows, with sane values; the course server's
jupyterhub_config.py loads in a real JupyterHub (the full hub run is tests/hub/test_jupyterhub.py); the app's
class settings are checked in words; an upload too big for a state file is refused by its size."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from softmax_widgets import classroom, launch

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
yaml = pytest.importorskip("yaml")

# the parts of the jupyterhub chart's values schema (values.schema.yaml, chart 3.x/4.x) this file may use: a key
# outside them is a typo the chart would reject or, worse, ignore
Z2JH_KEYS = {
    "singleuser": {"image": {"name", "tag", "pullPolicy", "pullSecrets"}, "memory": {"guarantee", "limit"},
                   "cpu": {"guarantee", "limit"}, "defaultUrl": None, "extraEnv": None, "lifecycleHooks": None,
                   "startTimeout": None, "storage": None, "cmd": None, "profileList": None, "uid": None,
                   "networkPolicy": None},
    "cull": {"enabled", "users", "adminUsers", "removeNamedServers", "timeout", "every", "concurrency", "maxAge"},
    "hub": None, "proxy": None, "scheduling": None, "prePuller": None, "ingress": None, "debug": None,
}
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_size(text) -> int:
    """The chart's memory format (KubeSpawner's): a number with K, M, G or T."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])", str(text))
    assert m, f"{text!r} is not a memory size the chart takes (e.g. 1G, 512M)"
    return int(float(m.group(1)) * UNITS[m.group(2)])


def test_z2jh_config_uses_keys_the_chart_knows_with_sane_values():
    values = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    for key, sub in values.items():
        assert key in Z2JH_KEYS, f"config.yaml: {key} is not a key of the jupyterhub chart"
        for k, v in (values[key].items() if isinstance(sub, dict | set) else ()):
            allowed = Z2JH_KEYS[key]
            assert k in allowed, f"config.yaml: {key}.{k} is not a key of the jupyterhub chart"
            if isinstance(allowed, dict) and allowed[k] is not None:
                assert set(v) <= allowed[k], f"config.yaml: {key}.{k} has keys the chart lacks: {set(v) - allowed[k]}"
    user = values["singleuser"]
    assert user["image"]["name"] and isinstance(user["image"]["tag"], str)  # a tag of digits must stay a string
    assert byte_size(user["memory"]["guarantee"]) <= byte_size(user["memory"]["limit"])
    assert byte_size(user["memory"]["guarantee"]) >= 2**30 // 2  # the measured figure, docs/classroom.md
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] >= 600 and values["cull"]["every"] > 0
    # the default URL opens the student's copy of the dashboard notebook that the postStart hook makes
    url = user["defaultUrl"]
    folder, notebook = url.removeprefix("/lab/tree/").split("/")
    assert url.startswith("/lab/tree/") and (REPO / "examples" / notebook).exists()
    hook = " ".join(user["lifecycleHooks"]["postStart"]["exec"]["command"])
    assert f"copy_examples({folder!r})" in hook
    # the image is binder/ built by repo2docker: say so where the image is named
    assert "repo2docker" in (DEPLOY / "config.yaml").read_text() and (REPO / "binder" / "requirements.txt").exists()


LOAD_CHECK = """
import sys
from jupyterhub.app import JupyterHub
hub = JupyterHub()
hub.load_config_file(sys.argv[1])
c = hub.config
print(c.Spawner.default_url, c.Spawner.mem_guarantee, c.Spawner.mem_limit, c.Spawner.cmd[0], c.Spawner.cmd[-1])
"""


def test_course_server_config_loads_in_jupyterhub(tmp_path):
    pytest.importorskip("jupyterhub")
    out = subprocess.run([sys.executable, "-c", LOAD_CHECK, str(DEPLOY / "jupyterhub_config.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    url, guarantee, limit, cmd0, last = out.stdout.split()
    assert url == "/lab/tree/lesson/02_dashboard.ipynb" and (REPO / "examples" / "02_dashboard.ipynb").exists()
    assert byte_size(guarantee) <= byte_size(limit) and cmd0 == "bash" and last == "--"
    # the two deployments agree on what a student gets
    values = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    assert values["singleuser"]["defaultUrl"] == url
    assert (guarantee, limit) == (values["singleuser"]["memory"]["guarantee"], values["singleuser"]["memory"]["limit"])


def test_the_copy_command_of_the_course_server_copies_the_notebooks(tmp_path):
    """The start command's first half, run as the hub would (in the student's home): the lesson folder appears."""
    ns = {"get_config": lambda: _Config()}
    exec(compile((DEPLOY / "jupyterhub_config.py").read_text(), "jupyterhub_config.py", "exec"), ns)
    script = ns["c"].Spawner.cmd[2].split(" >/dev/null")[0]
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True, timeout=120)
    assert (tmp_path / "lesson" / "02_dashboard.ipynb").exists()


class _Config:
    """Just enough of traitlets' Config for exec() of the file outside JupyterHub."""

    def __init__(self):
        self._sections = {}

    def __getattr__(self, name):
        return self._sections.setdefault(name, _Section())


class _Section(dict):
    def __getattr__(self, name):
        return self[name]

    def __setattr__(self, name, value):
        self[name] = value


# ---- the app's class settings ----
def test_class_settings_in_words():
    with pytest.raises(ValueError, match="--prestart 5 is more than --max-kernels 3"):
        classroom.class_settings(max_kernels=3, prestart=5)
    with pytest.raises(ValueError, match="--max-kernels must be a whole number"):
        classroom.class_settings(max_kernels=-1)
    s = classroom.class_settings(prestart=2)
    assert s.cull_idle_s == 600  # a pooled page cannot shut its kernel: the culler is on
    assert any("Voila's preheated pool" in line for line in s.lines())


@pytest.mark.parametrize(("argv", "said"), [
    (["--max-kernels", "0"], "--max-kernels must be at least 1; got 0"),
    (["--cull-idle", "soon"], "--cull-idle takes a whole number, e.g. --cull-idle 10; got 'soon'"),
    (["--prestart", "-2"], "--prestart must be at least 1; got -2"),
])
def test_app_refuses_class_options_it_cannot_use(argv, said, capsys):
    from softmax_widgets.cli import main

    with pytest.raises(SystemExit):
        main(["app", *argv])
    assert said in capsys.readouterr().err


def test_the_app_config_carries_the_class_settings(tmp_path):
    page = launch.app_folder(tmp_path, classroom.class_settings(cull_idle_s=90, max_kernels=12))
    text = (page.parent / launch.APP_CONFIG_DIR / "voila.py").read_text()
    assert "voila_class.MAX_KERNELS = 12" in text and "cull_idle_timeout = 90" in text
    assert f"'websocket_max_message_size': {classroom.WEBSOCKET_LIMIT_BYTES}" in text
    assert "prelaunch_hook = voila_class.prelaunch_hook" in text and "preheat_kernel" not in text
    compile(text, "voila.py", "exec")
    (tmp_path / "pooled").mkdir()
    pooled = launch.app_folder(tmp_path / "pooled", classroom.class_settings(prestart=2))
    text = (pooled.parent / launch.APP_CONFIG_DIR / "voila.py").read_text()
    assert "preheat_kernel = True" in text and "default_pool_size = 2" in text and "prelaunch_hook = None" in text


def test_a_state_file_too_big_is_refused_by_its_size_before_it_is_read(tmp_path):
    from softmax_widgets import persist

    big = io.BytesIO(b"\0" * (classroom.UPLOAD_LIMIT_BYTES + 1))
    with pytest.raises(ValueError, match=r"the uploaded file is 16 MB: too big for a state file of this lesson"):
        persist.read(big)
    path = tmp_path / "huge.pt"
    with open(path, "wb") as f:  # a 1 GB file, sparse: no disk used, and read() never opens it
        f.truncate(2**30)
    with pytest.raises(ValueError, match=r"huge.pt is 1,024 MB: too big .*the limit is 16 MB"):
        persist.read(path)
