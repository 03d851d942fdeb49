"""The dashboard's Evaluation / Compare runs / Export tabs, headless: real widgets, real Trainer, real files."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import os

import numpy as np
import pytest
import torch

from softmax_widgets import Trainer, evaluation
from softmax_widgets.app import Dashboard
from softmax_widgets.throttle import GRAD
from softmax_widgets.ui.controls import descendants
from softmax_widgets.ui.panes.compare import MAX_RUN_POINTS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dash(digits):
    d = Dashboard(Trainer(digits, seed=0))
    d.views.min_interval = 0.0  # every epoch refreshes (the default throttle is for Play in a browser)
    yield d
    d.close()


@pytest.fixture
def fresh(dash):
    dash.views.runs.clear()
    dash.buttons["reset"].click()
    return dash


def test_tabs_are_mounted_below_the_plots_and_no_pane_is_open_at_first(digits):
    d = Dashboard(Trainer(digits, seed=0))
    views = d.views
    assert d.children[2] is views.widget
    assert list(views.buttons) == list(views.tab.titles) == ["W.grad", "batch", "bias", "graph", "evaluation",
                                                            "compare runs", "export"]
    # no pane open: the dashboard and the cell below it fit one 720 px screen (tests/browser/test_layout_browser.py)
    assert views.tab.selected_index is None and views.shown is None and views.tab.layout.display == "none"
    assert not any(b.value for b in views.buttons.values()) and views.close_button.layout.display == "none"
    # a pane joins the page when its tab first opens (a bqplot figure first drawn hidden measures 0 px), and
    # stays: a figure view rebuilt at every switch leaked ~1 MB of page each time (bench_browser)
    assert [len(box.children) for box in views.tab.children] == [0] * 7
    views.buttons["evaluation"].value = True  # a click on its tab
    views.buttons["W.grad"].value = True
    assert views.shown == "W.grad" and [b.value for b in views.buttons.values()] == [True] + [False] * 6
    assert [len(box.children) for box in views.tab.children] == [1, 0, 0, 0, 1, 0, 0]
    assert views.tab.children[4].children[0] is views.evaluation.widget
    assert views.tab.layout.display is None and views.close_button.layout.display is None
    # a second click on the open tab closes it; the heatmaps behind it stop being pushed
    views.buttons["W.grad"].value = False
    assert views.shown is None and views.tab.layout.display == "none" and d._hidden & GRAD
    views.select("W.grad")
    assert views.shown == "W.grad" and views.buttons["W.grad"].value and not d._hidden & GRAD
    views.close_button.click()  # "✕ close"
    assert views.shown is None and not views.buttons["W.grad"].value
    d.close()


def test_confusion_matrix_and_bars_follow_each_epoch(fresh):
    t, ev = fresh.trainer, fresh.views.evaluation
    t.run_epoch()  # code in a cell: the epoch event alone must bring the views up to date
    m = evaluation.confusion_matrix(t).numpy()
    assert m.sum() == len(t.data.y_test) and m.trace() < m.sum()  # one epoch of digits still makes mistakes
    np.testing.assert_array_equal(ev.matrix.color, m)
    np.testing.assert_allclose(ev.acc_bars.y, evaluation.per_class_accuracy(t).numpy(), rtol=1e-6)
    assert list(ev.matrix.row) == list(ev.matrix.column) == t.data.classes
    assert f"{evaluation.evaluate_test_set(t).accuracy:.1%}" in ev.note.value


def test_phases_do_not_recompute_but_the_button_does(fresh):
    t, ev = fresh.trainer, fresh.views.evaluation
    before = ev.result
    for _ in range(3):
        t.train_step()  # not an epoch: the views sleep
    assert ev.result is before
    ev.button.click()
    assert ev.result.iteration == t.iteration == 3
    np.testing.assert_array_equal(ev.matrix.color, evaluation.confusion_matrix(t).numpy())


def _worst_mistake(t: Trainer) -> tuple[int, int, int]:
    m = evaluation.confusion_matrix(t).clone()
    m.fill_diagonal_(-1)
    r, c = divmod(int(m.argmax()), m.shape[1])
    return r, c, int(m[r, c])


def test_selecting_a_cell_shows_its_images(fresh):
    t, ev = fresh.trainer, fresh.views.evaluation
    t.run_epoch()
    r, c, count = _worst_mistake(t)
    assert count > 0
    ev.matrix.selected = np.array([[r, c]])  # what the front end sets on a click (interactions: click → select)
    names = t.data.classes
    assert f"{names[r]} taken for {names[c]}: {count} image" in ev.title.value
    shown = min(count, len(ev.tiles))
    assert ev.shown_count == shown
    ex = evaluation.cell_examples(t, r, c, k=len(ev.tiles))
    assert f"p({names[c]}) {float(ex.p_predicted[0]):.2f}" in ev.captions[0].value
    assert f"p({names[r]}) {float(ex.p_true[0]):.2f}" in ev.captions[0].value
    assert bytes(ev.images[0].value).startswith(PNG_SIGNATURE)
    # the element_click message bqplot sends for a cell on the diagonal
    ev.matrix._handle_custom_msgs(None, {"event": "element_click", "data": {"rowNum": r, "columnNum": r}})
    right = int(evaluation.confusion_matrix(t)[r, r])
    assert f"{names[r]} predicted right: {right} image" in ev.title.value
    assert ev.shown_count == min(right, len(ev.tiles))
    for _ in range(2):
        t.train_step()  # W moves, the matrix on screen waits for the epoch: a click counts what it shows
    ev.matrix.selected = np.array([[c, r]])
    assert f": {int(ev.matrix.color[c, r])} image" in ev.title.value


def test_the_clicked_cell_follows_training(fresh):
    t, ev = fresh.trainer, fresh.views.evaluation
    ev.show_cell(1, 1)
    t.run_epoch()
    assert f": {int(evaluation.confusion_matrix(t)[1, 1])} image" in ev.title.value


def test_fashion_shirts_taken_for_t_shirts(fashion):
    d = Dashboard(Trainer(fashion, seed=0))
    try:
        t, ev = d.trainer, d.views.evaluation
        for _ in range(40):
            t.train_step()
        ev.button.click()
        m = evaluation.confusion_matrix(t)
        np.testing.assert_array_equal(ev.matrix.color, m.numpy())
        ev.matrix.selected = np.array([[6, 0]])  # true Shirt, predicted T-shirt/top
        assert f"Shirt taken for T-shirt/top: {int(m[6, 0])} images" in ev.title.value
        assert ev.shown_count == min(int(m[6, 0]), len(ev.tiles)) > 0
    finally:
        d.close()


def test_a_kept_run_has_one_colour_on_the_loss_plot_and_in_compare_runs(fresh):
    """Kept run 0 was orange on the main loss plot and blue in compare runs: two palettes indexed the same way."""
    t = fresh.trainer
    for _ in range(3):
        t.train_step()
        fresh.keep.click()
    runs = list(fresh.views.runs)
    main = [fresh.plots.run_lines[r.id].colors[0] for r in runs]
    compare = [fresh.views.compare.lines[r.id][0].colors[0] for r in runs]
    assert main == compare and len(set(main)) == 3
    assert fresh.plots.loss_line.colors[0] not in main  # never the live curve's colour


def test_keep_two_runs_compare_and_remove_one(fresh):
    t, cmp = fresh.trainer, fresh.views.compare
    cmp.keep.click()
    assert "nothing to keep yet" in cmp.status.value and len(fresh.views.runs) == 0
    t.run_epoch()
    cmp.keep.click()  # default label from the settings
    fresh.controls.lr.value = 0.01
    fresh.buttons["reset"].click()
    t.run_epoch()
    cmp.label.value = "slow"
    cmp.keep.click()
    runs = list(fresh.views.runs)
    assert [r.lr for r in runs] == [0.1, 0.01]
    assert cmp.labels() == ["lr 0.1, batch 256", "slow", "live: lr 0.01, batch 256"]
    assert [m.labels[0] for m in cmp.acc_fig.marks] == cmp.labels()
    assert all(html.escape(label) in cmp.legend.value for label in cmp.labels())  # the legend above the figures
    assert "dashed" in cmp.legend.value  # the live run, drawn dashed, says so in the legend too
    loss_line = cmp.lines[runs[1].id][0]
    assert len(loss_line.y) == len(runs[1].history.loss) and loss_line.y[0] == pytest.approx(runs[1].history.loss[0])
    assert list(cmp.lines[runs[0].id][1].y) == pytest.approx(runs[0].history.test_acc)
    fresh.controls.lr.value = 0.5  # a slider: the live label follows at once
    assert cmp.labels()[-1] == "live: lr 0.5, batch 256" and cmp.label.placeholder == "lr 0.5, batch 256"
    cmp.kept.value = (runs[0].id,)
    cmp.remove.click()
    assert cmp.labels() == ["slow", "live: lr 0.5, batch 256"] and len(fresh.views.runs) == 1
    assert [label for label, _ in cmp.kept.options] == [str(runs[1])]
    fresh.controls.lr.value = 0.1


def test_opening_the_compare_tab_draws_the_live_run_up_to_now(fresh):
    t, cmp = fresh.trainer, fresh.views.compare
    fresh.views.select("evaluation")
    for _ in range(3):
        t.train_step()  # no epoch yet: the live curve waits
    assert len(cmp.lines["live"][0].x) == 0
    fresh.views.select("compare runs")
    assert list(cmp.lines["live"][0].x) == [1, 2, 3]
    assert list(cmp.figures.children) == [cmp.loss_fig, cmp.acc_fig]  # on the page once the tab is open


def test_compare_figures_join_the_page_when_their_tab_opens(digits):
    """A bqplot Figure drawn in a hidden tab measures 0 px and logs negative-size SVG errors in the browser."""
    d = Dashboard(Trainer(digits))
    cmp = d.views.compare
    assert d.views.shown is None and cmp.figures.children == ()
    d.views.select("compare runs")
    assert list(cmp.figures.children) == [cmp.loss_fig, cmp.acc_fig]
    d.views.select("export")
    d.views.select("compare runs")
    assert list(cmp.figures.children) == [cmp.loss_fig, cmp.acc_fig]
    d.close()


def test_compared_curves_are_decimated(digits):
    t = Trainer(digits, batch_size=2)  # 719 iterations an epoch
    d = Dashboard(t)
    try:
        t.run_epoch()
        d.views.compare.keep.click()
        (run,) = d.views.runs
        line = d.views.compare.lines[run.id][0]
        assert len(line.x) <= MAX_RUN_POINTS + 1 and line.x[-1] == t.iteration
        assert line.y.dtype == np.float32 and np.isfinite(line.y).all()
    finally:
        d.close()


def test_export_writes_files_that_load_back(fresh, tmp_path):
    t, ex = fresh.trainer, fresh.views.export
    for _ in range(7):
        t.train_step()
    ex.folder.value = str(tmp_path)
    ex.buttons["csv"].click()
    path = tmp_path / "softmax_run.csv"
    assert str(path) in ex.status.value
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 7 and float(rows[-1]["loss"]) == t.history.loss[-1]
    ex.buttons["weights"].click()
    png = (tmp_path / "softmax_W.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and "softmax_W.png" in ex.status.value
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        assert Image.open(io.BytesIO(png)).size[0] > 0
    ex.buttons["state"].click()
    back = Trainer.load(tmp_path / "softmax_state.pt", data=t.data)
    assert torch.equal(back.W, t.W) and back.iteration == t.iteration == 7


def test_a_folder_that_cannot_be_written_is_said_in_words(fresh, tmp_path):
    ex = fresh.views.export
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    ex.folder.value = str(not_a_folder)
    ex.buttons["csv"].click()
    assert "could not write" in ex.status.value and "folder you can write" in ex.status.value
    assert "Traceback" not in ex.status.value
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o555)
    folder = readonly if os.geteuid() != 0 else "/sys"  # root ignores permission bits; sysfs refuses new files
    ex.folder.value = str(folder)
    ex.buttons["state"].click()
    assert "could not write" in ex.status.value and "ermission denied" in ex.status.value


def test_figures_go_to_the_browser_through_bqplot(fresh):
    ex = fresh.views.export
    fig = ex.figures["confusion matrix"]
    sent = []
    fig.comm.send = lambda data=None, buffers=None, **kw: sent.append(data)  # the kernel side of the wire only
    try:
        ex.figure.value = ("confusion matrix",)
        ex.png.click()
        ex.svg.click()
    finally:
        del fig.comm.send
    contents = [m["content"] for m in sent if m.get("method") == "custom"]
    assert [c["type"] for c in contents] == ["save_png", "save_svg"]
    assert contents[0]["filename"] == "softmax_confusion_matrix.png" and "download" in ex.status.value
    assert {"loss", "accuracy", f"W: {fresh.trainer.data.classes[0]}"} <= set(ex.figures)


def test_close_leaves_the_trainer_as_it_found_it(digits):
    t = Trainer(digits)
    n = t.listener_count
    d = Dashboard(t)
    t.train_step()
    d.views.compare.keep.click()
    d.views.runs.clear()  # a removed run's lines are closed by close() too
    matrix = d.views.evaluation.matrix
    d.close()
    assert t.listener_count == n and matrix.comm is None and d.views.export.folder.comm is None
    assert d.views.compare.loss_fig.comm is None  # never shown (its tab was not opened), closed all the same
    assert not d.views.runs._listeners


def test_epochs_in_quick_succession_refresh_once_the_interval_is_over(digits):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # the kernel's loop, as the Dashboard captures it
    try:
        d = Dashboard(Trainer(digits, seed=0))
        v = d.views
        v.min_interval = 3.0  # two digits epochs take well under this, even on a loaded machine
        t = d.trainer
        v.refresh()  # the interval starts now
        t.run_epoch()
        t.run_epoch()  # within the interval: held back, not computed under the training loop
        assert v.evaluation.result.iteration < t.iteration
        loop.run_until_complete(asyncio.sleep(3.3))
        assert v.evaluation.result.iteration == t.iteration
        np.testing.assert_array_equal(v.evaluation.matrix.color, evaluation.confusion_matrix(t).numpy())
        d.close()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_confusion_cell_click_as_the_browser_sends_it_raises_nothing(fresh, caplog):
    """The browser sends `selected` as JSON [[row, column]]; bqplot's own trait made it an object array that could
    not be sent back ("ValueError: Unsupported dtype object" in the kernel's log on every click)."""
    t, ev = fresh.trainer, fresh.views.evaluation
    t.run_epoch()
    ev.matrix.set_state({"selected": [[6, 0]]})
    assert ev.matrix.selected.tolist() == [[6, 0]] and ev.cell == (6, 0)
    names = t.data.classes
    assert f"{names[6]} taken for {names[0]}" in ev.title.value
    # the same through the widget's comm, as the kernel receives it from JupyterLab
    msg = {"content": {"comm_id": ev.matrix.comm.comm_id,
                       "data": {"method": "update", "state": {"selected": [[3, 5]]}, "buffer_paths": []}},
           "buffers": [], "metadata": {}}
    with caplog.at_level("ERROR"):
        ev.matrix.comm.handle_msg(msg)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    assert ev.cell == (3, 5) and f"{names[3]} taken for {names[5]}" in ev.title.value
    ev.matrix.set_state({"selected": None})  # a click beside the cells clears it: nothing to show, no error
    assert ev.cell == (3, 5)


def test_class_names_fit_under_the_matrix(fashion):
    from softmax_widgets.ui.panes.evaluation import short_name

    short = [short_name(c) for c in fashion.classes]
    assert max(map(len, short)) <= 9 and len(set(short)) == len(short), short
    assert short[0] == "T-shirt" and short[-1] == "Boot"


# ---- tick labels, kept-run names, epoch numbering, batch captions (the tester's report, items 7, 8, 9, 15) ----

@pytest.mark.parametrize("n", [1, 9, 10, 11, 57, 99, 100, 235, 250, 280, 300, 999, 1000, 4700, 23_500, 470_000])
def test_iteration_ticks_are_whole_numbers_that_never_touch(n):
    from softmax_widgets.ui.panes.compare import COMPARE_PX
    from softmax_widgets.ui.plots import CURVE_PX, DIGIT_PX, iteration_ticks

    for width in (CURVE_PX, COMPARE_PX):
        ticks = iteration_ticks(n, width)
        assert len(ticks) >= 2 and ticks[0] == 0 and ticks[-1] <= max(n, 1)
        assert np.all(ticks == np.round(ticks)) and len(set(ticks.tolist())) == len(ticks)
        label = DIGIT_PX * len(str(int(ticks[-1])))  # the widest label's pixels
        gap = width / max(n, 1) * (ticks[1] - ticks[0])  # pixels between two ticks
        assert gap >= label + 8, f"{n} iterations in {width} px: ticks {ticks} leave {gap:.0f} px per label"


def test_the_live_x_axes_follow_the_iterations_with_ticks_that_fit(fresh):
    t, p = fresh.trainer, fresh.plots
    for _ in range(300):
        t.train_step()
    fresh.push()
    for axis in (p.loss_xaxis, p.acc_xaxis):
        ticks = np.asarray(axis.tick_values)
        assert ticks.tolist() == [0, 50, 100, 150, 200, 250, 300]  # 272 px: six gaps of 45 px for 3 digits


def test_a_run_kept_after_an_epoch_says_so_and_its_name_is_whole(fresh):
    t, cmp = fresh.trainer, fresh.views.compare
    t.run_epoch()
    end = t.iteration
    cmp.label.value = "a very long label a teacher typed to say which learning rate and which batch this was"
    cmp.keep.click()
    run = list(fresh.views.runs)[-1]
    assert run.status == "finished" and "after epoch 1" in str(run) and "paused" not in str(run)
    assert f"after epoch 1 (iteration {end})" in cmp.status.value
    assert html.escape(run.label) in cmp.kept_text.value and run.label in cmp.kept.tooltip  # never cut
    t.train_step()
    cmp.keep.click()
    later = list(fresh.views.runs)[-1]
    assert later.status == "paused" and f"paused in epoch 2, at iteration {end + 1}" in str(later)
    # one test point per run: the x axis still spans 0..the longest run, each tick label once
    fresh.views.select("compare runs")
    for axis in cmp.x_axes:
        ticks = np.asarray(axis.tick_values)
        assert axis.scale.min == 0 and axis.scale.max >= end + 1
        assert len(set(ticks.tolist())) == len(ticks) >= 2 and np.all(ticks == np.round(ticks))


def test_the_evaluation_tab_numbers_epochs_as_the_counter_does(fresh):
    t, ev = fresh.trainer, fresh.views.evaluation
    ev.refresh()
    assert "in epoch 1, at iteration 0" in ev.note.value and "epoch 0" not in ev.note.value
    t.run_epoch()
    fresh.views.flush()
    ev.refresh()
    assert f"after epoch 1 (iteration {t.iteration})" in ev.note.value
    t.train_step()
    ev.refresh()
    assert f"in epoch 2, at iteration {t.iteration}" in ev.note.value


def test_batch_captions_say_what_the_model_said_below_each_image(fresh):
    fresh.views.select("batch")
    for name in ["next_batch", "forward"]:
        fresh.buttons[name].click()
    t, p = fresh.trainer, fresh.plots
    pred = t.y_hat.argmax(1)
    names = t.data.classes
    for i, (fig, cap) in enumerate(zip(p.img_figs, p.captions, strict=True)):
        assert fig.title.endswith(names[int(t.y[i])])  # the title: the true class only, short enough to fit
        assert f"→ {html.escape(names[int(pred[i])])} " in cap.value and "white-space:normal" in cap.value
    assert all(f.layout.height == "80px" for f in p.prob_figs)  # the bars: taller than the 50 px that hid them


# ---- the export tab: a state file uploaded, browser downloads (issue 13, item 6) ----

def _upload(ex, name: str, data: bytes) -> None:
    """As the page's upload.js sends a chosen file: its pieces as comm messages (tests/test_upload.py: the rest)."""
    from tests.test_upload import send_as_the_page

    send_as_the_page(ex.upload, name, data)


def test_an_uploaded_state_file_continues_the_run_and_undo_takes_it_back(fresh):
    t, ex = fresh.trainer, fresh.views.export
    for _ in range(7):
        t.train_step()
    buf = io.BytesIO()
    t.save(buf)
    saved_W = t.W.detach().clone()
    for _ in range(5):
        t.train_step()
    before_W = t.W.detach().clone()
    _upload(ex, "lesson.pt", buf.getvalue())
    assert t.iteration == 7 and torch.equal(t.W, saved_W)
    assert "loaded lesson.pt" in ex.status.value and "undo" in ex.status.value and "#2b6e2b" in ex.status.value
    fresh.buttons["undo"].click()  # one step takes the load back
    assert t.iteration == 12 and torch.equal(t.W, before_W)


def test_a_bad_upload_is_said_in_red_and_changes_nothing(fresh):
    t, ex = fresh.trainer, fresh.views.export
    t.train_step()
    W = t.W.detach().clone()
    _upload(ex, "notes.pt", b"this is not a state file")
    assert "#b00020" in ex.status.value and "notes.pt" in ex.status.value
    assert "is not a softmax_widgets state file: it holds text" in ex.status.value
    assert t.iteration == 1 and torch.equal(t.W, W)


def _downloaded(ex) -> tuple[str, bytes]:
    """The file the page's download module (ui/download.js) is handed: its name and the bytes of its data: URL."""
    import base64
    import time

    link = ex.link
    head, _, body = link.url.partition(";base64,")
    assert head.startswith("data:") and body, link.url[:200]
    assert link.token and link.until > time.time() * 1000 and link.label.startswith(f"download {link.name} again")
    return link.name, base64.b64decode(body)


def test_in_voila_every_file_export_is_a_browser_download_with_the_right_bytes(fresh, tmp_path):
    from softmax_widgets.ui.panes.export import ExportPane

    t = fresh.trainer
    for _ in range(5):
        t.train_step()
    ex = ExportPane(t, {}, browser_download=True)
    ex.folder.value = str(tmp_path)
    try:
        ex.buttons["csv"].click()
        name, data = _downloaded(ex)
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert name == "softmax_run.csv" and len(rows) == 5 and float(rows[-1]["loss"]) == t.history.loss[-1]
        assert "sent softmax_run.csv to your browser" in ex.status.value
        ex.buttons["weights"].click()
        name, data = _downloaded(ex)
        assert name == "softmax_W.png" and data.startswith(PNG_SIGNATURE)
        ex.buttons["state"].click()
        name, data = _downloaded(ex)
        sd = torch.load(io.BytesIO(data), weights_only=True)
        assert name == "softmax_state.pt" and sd["iteration"] == 5
        assert not list(tmp_path.iterdir())  # nothing left in the server's folder
        first = ex.link.token
        ex.buttons["state"].click()
        assert ex.link.token != first  # a second click is a second download (a new token)
    finally:
        for w in descendants(ex.widget):
            w.close()


def test_a_kept_run_has_one_colour_and_one_curve_on_the_loss_plot_and_in_compare_runs(fresh):
    """Kept run 0 was orange on the loss plot and blue in compare runs: one palette, one kept-run curve now."""
    t = fresh.trainer
    runs = []
    for lr in (0.1, 0.5):
        t.lr = lr
        for _ in range(40):
            t.train_step()
        fresh.keep.click()
        runs.append(list(fresh.views.runs)[-1])
        fresh.buttons["reset"].click()
    colours = []
    for run in runs:
        main, (compared, _acc) = fresh.plots.run_lines[run.id], fresh.views.compare.lines[run.id]
        assert main.colors == compared.colors
        np.testing.assert_array_equal(main.x, compared.x)  # 40 points: neither curve is decimated
        np.testing.assert_allclose(main.y, compared.y)
        colours.append(main.colors[0])
    assert colours[0] != colours[1]
