"""The Trainer's code reads as the lesson: each phase leads with the lesson's line, the order rules are one table,
functions are set through one public path, and a broken listener is said in the notebook without stopping anything."""

from __future__ import annotations

import inspect
import re
import textwrap

import pytest

from softmax_widgets import Phase, PhaseError, Trainer
from softmax_widgets.messages import say
from softmax_widgets.phases import REACHABLE, REFUSALS, RULES, Batch, Forward, Grad, LoopState
from tests.test_loop_state import first_call_named

LESSON_LINES = {  # the lesson's line, as the phase body writes it on self
    Phase.FORWARD: [r"y_hat = self\._net\(self\.X\)", r"loss = self\._loss_fn\(y_hat, self\.y\)\.sum\(\)"],
    Phase.BACKWARD: [r"self\.loss\.backward\(\)"],
    Phase.SGD: [r"self\._sgd\(\[self\.W, self\.b\], self\._lr, B\)"],
    Phase.ZERO_GRAD: [r"p\.grad\.zero_\(\)"],
    Phase.NEXT_BATCH: [r"self\.X, self\.y = self\.batch\(idx\)"],
}
FIRST_LINES = 5


def body(phase: Phase) -> list[str]:
    """The phase method's code lines after its docstring."""
    src = textwrap.dedent(inspect.getsource(getattr(Trainer, phase.value).__wrapped__))
    lines = [line.strip() for line in src.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith('"""')) + 1
    return [line for line in lines[start:] if line and not line.startswith("#")]


@pytest.mark.parametrize("phase", list(Phase), ids=[p.value for p in Phase])
def test_each_phase_method_leads_with_the_lessons_line(phase):
    lines = body(phase)
    for pattern in LESSON_LINES[phase]:
        assert any(re.search(pattern, line) for line in lines[:FIRST_LINES]), (pattern, lines[:FIRST_LINES])
    assert len(lines) <= 13, f"{phase}() is {len(lines)} lines: the lesson is lost in them"


def test_backward_is_about_ten_lines():
    assert len(body(Phase.BACKWARD)) <= 11


def test_every_refusal_in_the_table_names_the_call_step_makes_there_first():
    for _condition, nxt, refused in RULES:
        assert nxt not in refused, f"{nxt} is both next and refused"
        for why in refused.values():  # a catalog id; the sentence names the next call first (wording on purpose)
            assert first_call_named(say(why)) == nxt.value, why
    for (phase, b, f, g), why in REFUSALS.items():
        state = LoopState(b, f, g)
        assert (why is None) == (state.refusal(phase) is None)
        assert why is None or state.refusal(phase).id == why
        assert state.refusal(state.next_phase) is None, state  # Step never runs into a wall


def test_the_reachable_states_are_those_a_run_gets_to_and_a_file_outside_them_is_refused(digits):
    assert (Batch.NONE, Forward.NONE, Grad.NONE) in REACHABLE
    assert (Batch.USED, Forward.LIVE, Grad.FILLED) not in REACHABLE
    t = Trainer(digits, batch_size=64)
    seen = set()
    for _ in range(12):
        t.step()
        seen.add((t.state.batch, t.state.forward, t.state.grad))
    assert seen <= REACHABLE
    t.next_batch()
    sd = t.state_dict()
    sd["progress"] = dict(sd["progress"], batch="none")
    with pytest.raises(ValueError, match="not a place the lesson's loop can reach"):
        t.load_state_dict(sd)


def test_a_refused_phase_raises_before_any_event(digits):
    t = Trainer(digits, batch_size=64)
    events = []
    t.on_change(lambda tr, e: events.append(e))
    with pytest.raises(PhaseError):
        t.sgd()
    assert events == [] and len(t.snapshots) == 0


def test_set_function_is_the_one_path_and_can_stay_quiet(digits):
    t = Trainer(digits, batch_size=64)
    events = []
    t.on_change(lambda tr, e: events.append(e))

    def my_softmax(X):
        return X.exp() / X.exp().sum(dim=1, keepdim=True)

    t.set_function("softmax", my_softmax, quiet=True)
    assert t.softmax is my_softmax and events == []
    t.softmax = my_softmax  # the attribute is set_function, told
    assert [e.kind for e in events] == ["settings"] and events[0].detail["id"] == "swap.set"
    assert "your my_softmax" in events[0].message  # the student's own name for it, read back
    with pytest.raises(ValueError) as err:  # a plain ValueError: the sentence (args[0]) carries the id
        t.set_function("soft_max", my_softmax)
    assert err.value.args[0].id == "swap.unknown_slot"
    with pytest.raises(ValueError) as err:
        t.set_function("optimizer", 3)
    assert err.value.args[0].id == "swap.not_callable"
    assert callable(t.optimizer)


def test_undo_keeps_its_own_copy_of_w_and_the_trainer_has_no_buffer_for_it(digits):
    t = Trainer(digits, batch_size=64)
    t.train_step()
    assert not hasattr(t, "W_before") and not hasattr(t, "b_before")
    W = t.W.detach().clone()
    t.train_step()
    t.undo(iterations=1)
    assert bool((t.W.detach() == W).all())


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_a_failing_listener_shows_its_traceback_in_the_notebook_and_stops_nothing():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent("""\
        from softmax_widgets import Trainer, load_dataset
        t = Trainer(load_dataset('digits'), batch_size=64)
        seen = []
        def broken(trainer, event):
            return 1 / 0
        t.on_change(broken)
        t.on_change(lambda trainer, event: seen.append(event.kind))
        t.train_step(); t.train_step()
        print('iterations', t.iteration, 'seen', len(seen))"""))]
    nbclient.NotebookClient(nb, timeout=240, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "Your Trainer listener broken raised ZeroDivisionError" in stderr
    assert "Traceback (most recent call last)" in stderr and "return 1 / 0" in stderr
    assert stderr.count("Your Trainer listener") == 1  # said once, not at every event
    assert "iterations 2 seen 10" in stdout  # the other listener heard every phase, the Trainer went on
