"""One course server for the lesson, The Littlest JupyterHub style: drop this file into
/opt/tljh/config/jupyterhub_config.d/ (TLJH loads every .py there after its own settings) and run
`sudo tljh-config reload`; or pass it to a plain JupyterHub with `jupyterhub -f deploy/jupyterhub_config.py`.
The kit must be installed in the students' environment (TLJH: `sudo -E pip install softmax-widgets` into
/opt/tljh/user). docs/classroom.md has the figures behind the numbers below (tests/hub/test_jupyterhub.py runs this
file in a real JupyterHub with ten students)."""

import importlib.util
import shlex
import sys

c = get_config()  # noqa: F821 - JupyterHub's config loader defines it

LESSON = "lesson"  # each student's own copy of the notebooks, in their home folder
# the notebooks are copied in as each server starts; a copy a student already has (and edited) is never touched
COPY = f"python -c {shlex.quote(f'from softmax_widgets.launch import copy_examples; copy_examples({LESSON!r})')}"
# JupyterHub appends its own arguments to cmd: "$@" passes them on to jupyterhub-singleuser
c.Spawner.cmd = ["bash", "-c", f'{COPY} >/dev/null && exec jupyterhub-singleuser "$@"', "--"]
c.Spawner.default_url = f"/lab/tree/{LESSON}/02_dashboard.ipynb"  # Lab opens on the dashboard notebook
# measured (docs/classroom.md): one student's server and kernel on the full Fashion-MNIST take ~1 GB with the
# CUDA build of torch; guarantee that, and stop a runaway kernel at twice it. TLJH's SystemdSpawner enforces
# both; the LocalProcessSpawner of a plain JupyterHub ignores them
c.Spawner.mem_guarantee = "1G"
c.Spawner.mem_limit = "2G"
c.Spawner.cpu_limit = 1.0
# one BLAS thread per kernel: thirty kernels each starting a thread per core fight over the cores
c.Spawner.environment = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
c.Spawner.http_timeout = 120  # a server start on a busy machine (the copy imports nothing heavy)

# idle servers are stopped after an hour: TLJH has its culler (`tljh-config set services.cull.timeout 3600`);
# a plain JupyterHub gets jupyterhub-idle-culler here when it is installed (pip install jupyterhub-idle-culler)
services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
if not any("cull" in s.get("name", "") for s in services) and importlib.util.find_spec("jupyterhub_idle_culler"):
    services.append({"name": "idle-culler",
                     "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]})
    c.JupyterHub.services = services
    roles = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
    roles.append({"name": "idle-culler", "services": ["idle-culler"],
                  "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
    c.JupyterHub.load_roles = roles
