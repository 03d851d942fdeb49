"""The settings widgets both ways: the lr slider and box, the batch size, the seed box and the softmax toggle.

A value a student sets goes to the Trainer, which validates it; a refused one is said on the status line and put
back. A setting changed from code (t.lr = 1 in a cell) moves the widgets to match, quietly: their observers must not
take it for a student's change.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from softmax_widgets import model

if TYPE_CHECKING:
    from collections.abc import Callable

    from softmax_widgets.trainer import Trainer

    from .controls import Controls
    from .status import Status

__all__ = ["Quiet", "Settings"]


class Quiet:
    """True while the dashboard moves its own widgets: `with quiet():` around the change, `if quiet:` in the
    observers that would otherwise act on it. Nests."""

    def __init__(self):
        self.depth = 0

    def __bool__(self) -> bool:
        return self.depth > 0

    @contextmanager
    def __call__(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


class Settings:
    """Wires the settings widgets of `controls` to `trainer`; `show()` pushes the status after a change."""

    def __init__(self, trainer: Trainer, controls: Controls, status: Status, quiet: Quiet, show: Callable[[], None]):
        self.trainer, self.controls, self.status, self.quiet, self.show = trainer, controls, status, quiet, show
        c = controls
        c.softmax.observe(lambda ch: self.choose_softmax(ch["new"]), "value")
        c.lr.observe(lambda ch: self.set("lr", ch["new"], c.lr), "value")
        c.lr_text.observe(lambda ch: self.typed_lr(ch["new"]), "value")
        c.seed.observe(lambda ch: self.typed_seed(ch["old"], ch["new"]), "value")
        c.batch_size.observe(lambda ch: self.set("batch_size", ch["new"], c.batch_size), "value")

    def set(self, name: str, value, widget) -> None:
        """lr / batch size from a widget: the Trainer validates; on a bad value, say why and put it back."""
        if self.quiet:
            return
        try:
            setattr(self.trainer, name, value)
            self.status.error("")
        except ValueError as err:
            self.status.error(err)
            if widget is not None:
                with self.quiet():
                    widget.value = getattr(self.trainer, name)
        self.show()

    def typed_lr(self, text: str) -> None:
        """The lr box: a number typed (then Enter) sets trainer.lr; a refused one is put back, the error shown."""
        if self.quiet:
            return
        try:
            value = float(str(text).strip().replace(",", "."))
        except ValueError:
            self.status.error(f"lr {str(text).strip()!r} is not a number: type one like 0.1 or 1e-3 "
                              f"(the lr stays {self.trainer.lr:g}).")
            self.show()  # puts the box back to the Trainer's lr
            return
        self.set("lr", value, None)

    def typed_seed(self, old: int, new: int) -> None:
        """The seed box: say what the seed is for; a negative one is refused and put back."""
        if self.quiet:
            return
        if new < 0 or new >= 2**32:
            self.status.error(f"seed {new} is refused: a seed is a whole number from 0 to 2**32 - 1 (kept {old}).")
            with self.quiet():
                self.controls.seed.value = old
        else:
            self.status.error("")
            self.status.notice(f"seed {new}: used by Reset (the same W, b and batches every time); New seed draws "
                               f"another. This run keeps seed {self.trainer.seed} until then.")
        self.show()

    def choose_softmax(self, value: str | None) -> None:
        """The softmax toggle: the lesson's or the stable one (from the next forward)."""
        if self.quiet or value is None:
            return
        try:
            self.trainer.use_stable_softmax(value == "stable")
            self.status.error("")
        except Exception as err:
            self.status.error(err)
        self.show()

    def match(self) -> None:
        """The Trainer changed (from code, or a way out): move the widgets to match."""
        t, c = self.trainer, self.controls
        with self.quiet():
            c.show_lr(t.lr)
            if c.batch_size.value != t.batch_size:
                c.batch_size.value = t.batch_size
            # neither lit (None) while a student's own softmax is in use
            c.show_softmax("lesson" if t.softmax is model.softmax else "stable"
                           if t.softmax is model.stable_softmax else None)
