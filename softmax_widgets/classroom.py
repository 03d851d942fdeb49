"""`softmax-widgets app` for a class: idle kernels culled, a cap on live kernels, pre-started kernels, and a cap
on what one upload may send to a kernel. Standard library only: the app process reads these settings and writes
them into the Voila config it starts Voila with; the Voila process then imports softmax_widgets.voila_class."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = ["UPLOAD_LIMIT_BYTES", "VISITOR_ENV", "WEBSOCKET_LIMIT_BYTES", "ClassSettings", "add_class_arguments",
           "class_settings", "voila_config"]

# A state file of this lesson is ~30 bytes per iteration over ~10 kB (W, b and the settings): 1.5 MB after
# 50,000 iterations. 16 MiB is a run far longer than a lecture; persist.read refuses a larger file by its size
UPLOAD_LIMIT_BYTES = 16 * 2**20
# what tornado lets one websocket message carry into the server (its default is 10 MiB): the page's upload
# (ui/upload.js) refuses a file over UPLOAD_LIMIT_BYTES before sending a byte and sends the rest in 1 MiB pieces;
# this cap only stops a page that skipped that check (tornado then closes its websocket)
WEBSOCKET_LIMIT_BYTES = UPLOAD_LIMIT_BYTES + 4 * 2**20
# the page's visitor (a browser), set in its kernel by voila_class.prelaunch_hook: each visitor's autosave is its own
VISITOR_ENV = "SOFTMAX_WIDGETS_VISITOR"
# a closed page whose kernel was never shut down (a crashed browser, a lost network) is found this often
MAX_CULL_INTERVAL_S = 60


@dataclass(frozen=True)
class ClassSettings:
    """What a class needs of the app. 0 means off (no culling, no cap, no pre-started kernels)."""

    cull_idle_s: int = 0
    max_kernels: int = 0
    prestart: int = 0

    def lines(self) -> list[str]:
        """What the app says about them as it starts."""
        out = []
        if self.max_kernels:
            out.append(f"at most {self.max_kernels} pages at once; a visitor past that gets a page saying the class "
                       "is full")
        if self.cull_idle_s:
            out.append(f"a kernel idle for {self.cull_idle_s} s with no page open is shut down")
        if self.prestart:
            out.append(f"{self.prestart} kernel(s) are started ahead of the visitors (Voila's preheated pool); a "
                       f"page closed without shutting its kernel down is left to the idle culler "
                       f"({self.cull_idle_s} s)")
        return out


def _count(flag: str, low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number, e.g. {flag} {max(low, 10)}; got "
                                             f"{text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{flag} must be at least {low}; got {value}")
        return value
    return parse


def add_class_arguments(parser: argparse.ArgumentParser) -> None:
    """The class options of `softmax-widgets app`."""
    parser.add_argument("--cull-idle", type=_count("--cull-idle", 10), default=0, metavar="SECONDS",
                        help="shut down a kernel idle this long with no page open (a tab closed without saying so)")
    parser.add_argument("--max-kernels", type=_count("--max-kernels", 1), default=0, metavar="N",
                        help="at most N pages (one kernel each) at once; the next visitor is told the class is full")
    parser.add_argument("--prestart", type=_count("--prestart", 1), default=0, metavar="N",
                        help="keep N kernels started and the dashboard built ahead of the visitors")


def class_settings(cull_idle_s: int = 0, max_kernels: int = 0, prestart: int = 0) -> ClassSettings:
    """The settings, checked together (ValueError in words). Pre-started kernels need Voila's preheat, and a page
    served from the pool cannot shut its own kernel down (Voila forbids the hook that lets it): they need the
    culler, which is turned on at 10 minutes if not asked for."""
    for name, value in (("--cull-idle", cull_idle_s), ("--max-kernels", max_kernels), ("--prestart", prestart)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a whole number of at least 0; got {value!r}")
    if max_kernels and prestart > max_kernels:
        raise ValueError(f"--prestart {prestart} is more than --max-kernels {max_kernels}: the pool alone would "
                         "fill the class")
    if prestart:
        import importlib.util

        try:
            found = importlib.util.find_spec("voila.voila_kernel_manager") is not None  # not imported: Voila is big
        except ImportError:  # no voila at all: app() says how to get it
            found = True
        if not found:
            raise ValueError("--prestart needs Voila's preheated kernels (voila>=0.3); the installed Voila has none. "
                             "Leave --prestart out: each page then starts its kernel as it opens")
        cull_idle_s = cull_idle_s or 600
    return ClassSettings(cull_idle_s, max_kernels, prestart)


def voila_config(settings: ClassSettings, package_parent: str) -> str:
    """Python for the Voila config file the app writes (see launch.APP_CONFIG, which it follows)."""
    s = settings
    out = ["", "# the class settings of `softmax-widgets app` (softmax_widgets/classroom.py)", "import sys",
           f"sys.path.append({package_parent!r})  # this very package, wherever the app runs from",
           "from softmax_widgets import voila_class", "",
           "c.VoilaConfiguration.multi_kernel_manager_class = voila_class.ClassKernelManager",
           f"voila_class.MAX_KERNELS = {s.max_kernels}",
           f"c.Voila.tornado_settings = {{'websocket_max_message_size': {WEBSOCKET_LIMIT_BYTES}}}",
           "c.VoilaConfiguration.prelaunch_hook = voila_class.prelaunch_hook"]
    if s.cull_idle_s:
        out += [f"c.MappingKernelManager.cull_idle_timeout = {s.cull_idle_s}",
                f"c.MappingKernelManager.cull_interval = {max(1, min(MAX_CULL_INTERVAL_S, s.cull_idle_s // 4))}",
                "c.MappingKernelManager.cull_connected = False  # a page still open keeps its kernel"]
    if s.prestart:
        out += ["c.VoilaConfiguration.preheat_kernel = True", f"c.VoilaConfiguration.default_pool_size = {s.prestart}",
                "c.VoilaConfiguration.prelaunch_hook = None  # Voila refuses a hook beside preheated kernels"]
    return "\n".join(out) + "\n"
