"""The two catalogs of sentences: every id is used and every template gets exactly the fields the code passes
(read off the source, so a message no test happens to render is checked too), an unknown id fails loudly, what is
said carries its id onto errors and events, and a translation changes the words and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from softmax_widgets import PhaseError, Trainer, diagnosis, messages
from softmax_widgets.messages import Said, fields_of, say, set_translation
from softmax_widgets.phases import RULES
from softmax_widgets.ui import messages as ui_messages

PACKAGE = Path(messages.__file__).parent
CATALOGS = {"core": (messages.CATALOG, messages.say), "ui": (ui_messages.CATALOG, ui_messages.say)}
# ids the code names through a table rather than in a say("...") call, and the fields that table's caller passes
DYNAMIC = {**{f"cause.{op}": {"top", "lr"} for op in diagnosis.CAUSES},
           **{why: set() for _c, _n, refused in RULES for why in refused.values()},
           "status.way_no_button": {"label"}, "status.off_page": set()}


def _sources() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py") if p.name != "messages.py"}


def _say_calls() -> list[tuple[str, set[str] | None, str]]:
    """Every say("id", field=...) in the package: the id, the fields passed (None: **fields), where."""
    calls = []
    for path, tree in _sources().items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "say"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                passed = None if any(k.arg is None for k in node.keywords) else {k.arg for k in node.keywords}
                calls.append((node.args[0].value, passed, f"{path.name}:{node.lineno}"))
    return calls


def _string_constants() -> set[str]:
    return {n.value for tree in _sources().values() for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


@pytest.mark.parametrize("layer", CATALOGS)
def test_every_id_in_a_catalog_is_used_somewhere(layer):
    catalog, _ = CATALOGS[layer]
    used = _string_constants() | set(DYNAMIC)
    assert not [i for i in catalog if i not in used], "sentences nobody says: delete them"


def test_every_say_names_a_known_id_and_fills_exactly_its_fields():
    templates = {**messages.CATALOG, **ui_messages.CATALOG}
    calls = _say_calls()
    assert len(calls) > 60
    for id, passed, where in calls:
        assert id in templates, f"{where}: say({id!r}) names no sentence"
        if passed is not None:
            assert passed == fields_of(templates[id]), f"{where}: {id} needs {fields_of(templates[id])}, got {passed}"
    for id, fields in DYNAMIC.items():
        assert fields_of(templates[id]) <= fields, id


def test_the_two_catalogs_share_no_id_and_each_says_its_own():
    assert not set(messages.CATALOG) & set(ui_messages.CATALOG)
    for catalog, speak in CATALOGS.values():
        for id, template in catalog.items():
            said = speak(id, **dict.fromkeys(fields_of(template), 1))
            assert isinstance(said, Said) and said.id == id and str(said)


def test_an_unknown_id_fails_loudly_naming_the_catalog():
    with pytest.raises(KeyError, match="no sentence 'refuse.nonsense'"):
        say("refuse.nonsense")
    with pytest.raises(KeyError, match="softmax_widgets.ui"):
        ui_messages.say("status.nonsense")


def test_a_refusal_carries_its_id_on_the_error_and_the_sentence_names_the_fix(digits):
    t = Trainer(digits, batch_size=32)
    with pytest.raises(PhaseError) as err:
        t.forward()
    assert err.value.id == "refuse.forward.no_batch"
    # the wording is the point here: a refusal names the call that fixes it (read aloud in class)
    assert "call next_batch() first" in str(err.value)


def test_events_carry_the_id_of_what_they_say(digits):
    t = Trainer(digits, batch_size=32)
    events = []
    t.on_change(lambda _t, event: events.append(event))
    t.softmax = lambda o: torch.softmax(o, dim=1)
    assert events[-1].kind == "settings" and events[-1].detail["id"] == "swap.set"


def test_a_translation_changes_what_a_refusal_says_and_nothing_else(digits):
    t = Trainer(digits, batch_size=32)
    before = t.state
    fake = {"refuse.forward.no_batch": "forward() braucht einen Batch: zuerst next_batch() aufrufen.",
            "lesson_back": "die Funktion der Lektion zurück: trainer.use_lesson({lessons})"}
    try:
        set_translation(fake)
        with pytest.raises(PhaseError) as err:
            t.forward()
        assert str(err.value) == fake["refuse.forward.no_batch"] and err.value.id == "refuse.forward.no_batch"
        assert t.state == before  # refused as before: nothing moved
        assert say("refuse.sgd.no_batch") == messages.CATALOG["refuse.sgd.no_batch"]  # not translated: English
        set_translation(lambda id, english: english.upper())  # a gettext-like function works too
        assert say("way.reset") == "RESET()"
    finally:
        set_translation(None)
    with pytest.raises(PhaseError) as err:
        t.forward()
    assert str(err.value) == messages.CATALOG["refuse.forward.no_batch"]


def test_a_broken_translation_falls_back_to_english_not_a_crash():
    try:
        set_translation({"swap.set": "{nom} gesetzt"})
        assert say("swap.set", name="softmax", whose="x", phase="forward").startswith("softmax set to x")
    finally:
        set_translation(None)


def test_a_sentence_pickles_and_copies_with_its_id():
    import copy
    import pickle

    said = say("swap.set", name="softmax", whose="your f", phase="forward")
    for again in (pickle.loads(pickle.dumps(said)), copy.deepcopy(said)):
        assert again == said and again.id == "swap.set" and again.fields == said.fields
