"""The presentation scale without a browser: what Dashboard(scale=...) and the A+ toggle set on the widgets.

What a projector shows of it is checked in Chromium (tests/browser/test_presentation_browser.py)."""

from __future__ import annotations

import math

import pytest

from softmax_widgets import Trainer
from softmax_widgets.app import Dashboard
from softmax_widgets.ui.controls import WIDTHS
from softmax_widgets.ui.plots import COMPACT, CURVE_H, CURVE_W, CURVE_W_COMPACT
from softmax_widgets.ui.presentation import (
    CELLS_CLASS,
    PRESENTATION,
    cells_css,
    check_scale,
    is_compact,
    scale_class,
    scale_css,
)


@pytest.fixture
def dash(digits):
    d = Dashboard(Trainer(digits, seed=0), scale=1.5)
    yield d
    d.close()


def px(value: str) -> float:
    assert value.endswith("px"), value
    return float(value[:-2])


@pytest.mark.parametrize("bad", [0.5, 0, -1.5, 2.5, math.nan, math.inf, "1.5", True, None])
def test_a_wrong_scale_is_refused_with_what_to_pass(digits, bad):
    with pytest.raises(ValueError) as err:
        check_scale(bad)
    text = str(err.value)
    assert "from 1 (normal size) to 2" in text and "scale=1.5" in text and repr(bad) in text
    if bad is None:  # Dashboard(scale=None) is the default: the size of the dashboard it replaces (rerun.py)
        return
    with pytest.raises(ValueError, match="scale must be") as err:
        Dashboard(Trainer(digits), scale=bad)
    assert "Dashboard(trainer, scale=1.5) enlarges" in str(err.value)
    with pytest.raises(ValueError, match="scale must be") as err:  # refused before any data is loaded
        Dashboard.from_dataset("no-such-set", scale=bad)
    assert 'Dashboard.from_dataset("no-such-set", scale=1.5) enlarges' in str(err.value)


def test_css_zooms_the_dashboard_and_zooms_bqplot_back():
    assert scale_css(1.0) == ""
    css = scale_css(1.5)
    assert ".sw-dashboard.sw-scale-150 {zoom: 1.5}" in css
    assert ".sw-dashboard.sw-scale-150 .bqplot {zoom: 0.666667;" in css
    assert "--bq-axis-tick-text-font: 18px sans-serif" in css and "--bq-axislabel-font: 21px sans-serif" in css
    assert scale_class(1.25) == "sw-scale-125" and not is_compact(1.25) and is_compact(1.5)


def test_scale_1_5_zooms_the_page_and_sizes_every_figure(dash):
    assert dash.scale == 1.5 and "sw-scale-150" in dash._dom_classes
    assert scale_css(1.5) in dash.controls.css.value
    assert dash.controls.scale.value is True  # A+ pressed
    p = dash.plots
    # compact layout × 1.5: the loss curve and each W map (what fits 1280×720 with the file browser collapsed);
    # the curves fill their columns, at least CURVE_W_COMPACT wide (two side by side where the row holds them)
    assert p.loss_fig.layout.width == p.acc_fig.layout.width == "100%"
    assert px(p.loss_fig.layout.height) == COMPACT["loss"][1] * 1.5 and px(p.acc_fig.layout.height) == \
        COMPACT["acc"][1] * 1.5
    assert p.curves.layout.flex == f"1 1 {CURVE_W_COMPACT}px" and p.curves.layout.flex_flow == "row wrap"
    assert all(c.layout.flex == f"1 1 {CURVE_W_COMPACT}px" for c in p.curve_columns)
    assert dash.controls.code_line.layout.min_height == "36px"  # room for the code line and the math below it
    for f in p.w_figs + p.g_figs:
        assert (px(f.layout.width), px(f.layout.height)) == (COMPACT["map"][0] * 1.5, COMPACT["map"][1] * 1.5)
        assert f.title_style["font-size"] == "18px" and f.fig_margin["top"] == 27
    assert px(p.bias_fig.layout.height) == 450 and p.bias_fig.fig_margin["left"] == 135
    ev = dash.views.evaluation
    assert px(ev.matrix_fig.layout.width) == 705 and ev.matrix.font_style == {"font-size": "15px"}
    assert ev.matrix_fig.axes[1].label_offset == "93px"
    assert px(dash.views.compare.loss_fig.layout.width) == 690
    # the controls' compact widths: the widest row fits 733 px (1100 px of output at 1.5)
    c = dash.controls
    assert (c.speed.layout.width, c.lr.layout.width) == (WIDTHS["speed"][1], WIDTHS["lr"][1])
    assert c.buttons["sgd"].layout.padding == "0 4px"
    # a batch image's title, set per batch, follows the scale
    dash.buttons["next_batch"].click()
    assert p.img_figs[0].title_style["font-size"] == "16.5px"
    assert p.loss_line.stroke_width == 2.25 and p.test_line.marker_size == 90  # strokes grow, markers by area
    # the W note has the short wording that fits the narrower maps
    assert "red votes for the class" in p.w_note.value


def test_the_toggle_goes_back_to_normal_and_returns_saying_so(dash):
    p, c = dash.plots, dash.controls
    dash.buttons["next_batch"].click()
    c.scale.value = False  # A+ released
    assert dash.scale == 1.0 and "sw-scale-150" not in dash._dom_classes and "zoom" not in c.css.value
    assert (p.loss_fig.layout.width, p.loss_fig.layout.height) == ("100%", f"{CURVE_H['loss']}px")
    assert p.curves.layout.flex == f"1 1 {CURVE_W}px" and c.code_line.layout.min_height == "26px"
    assert (p.w_figs[0].layout.width, p.w_figs[0].layout.height) == ("96px", "114px")
    assert p.w_figs[0].title_style["font-size"] == "12px" and p.img_figs[0].title_style["font-size"] == "11px"
    assert p.loss_line.stroke_width == 1.5 and p.test_line.marker_size == 40
    assert c.speed.layout.width == WIDTHS["speed"][0] and c.buttons["sgd"].layout.padding == "0 8px"
    assert dash.status == "normal size; A+ enlarges every text and plot ×1.5" and "one image" in p.w_note.value
    assert dash.trainer.iteration == 0 and dash.trainer.batches_drawn == 1  # the run is untouched
    c.scale.value = True
    assert dash.scale == 1.5 and "sw-scale-150" in dash._dom_classes
    assert dash.status.startswith("presentation size ×1.5") and "A+ again" in dash.status
    # the next click replaces the notice, as any event does
    dash.buttons["forward"].click()
    assert dash.status.startswith("forward")


def test_scale_set_from_code_and_a_refused_one_changes_nothing(digits):
    d = Dashboard(Trainer(digits, seed=0))
    try:
        assert d.scale == 1.0 and d.controls.scale.value is False and "zoom" not in d.controls.css.value
        assert f"scale={PRESENTATION:g}" in d.controls.scale.tooltip
        d.controls.scale.value = True  # A+ on a dashboard made at scale 1: the presentation scale, 1.5
        assert d.scale == PRESENTATION
        d.scale = 1.25  # not compact: the normal layout × 1.25
        assert "sw-scale-125" in d._dom_classes and "sw-scale-150" not in d._dom_classes
        loss = d.plots.loss_fig.layout
        assert (loss.width, loss.height) == ("100%", f"{CURVE_H['loss'] * 1.25:g}px")
        assert d.controls.speed.layout.width == WIDTHS["speed"][0]
        assert "×1.25" in d.controls.scale.tooltip  # A+ now toggles 1.25
        with pytest.raises(ValueError, match="dash.scale must be") as err:
            d.scale = 3
        assert "dash.scale = 1.5 enlarges" in str(err.value)
        assert d.scale == 1.25 and "sw-scale-125" in d._dom_classes
        d.controls.scale.value = False
        d.controls.scale.value = True
        assert d.scale == 1.25
        d.scale = 2  # allowed, and said not to fit a projector
        assert d.status.endswith("(above 1.5 the dashboard no longer fits one 1280×720 screen)"), d.status
    finally:
        d.close()


def test_the_loss_axis_has_a_few_round_ticks_that_follow_the_curve(digits):
    from softmax_widgets.ui.plots import value_ticks

    assert value_ticks(2.3).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert value_ticks(0.61).tolist() == [0.0, 0.2, 0.4, 0.6]
    assert value_ticks(float("nan")).tolist() == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    d = Dashboard(Trainer(digits, seed=0), scale=1.5)
    try:
        d.run_for(12)
        ticks = list(d.plots.loss_yaxis.tick_values)
        top = float(max(d.trainer.history.loss))
        assert 3 <= len(ticks) <= 7 and ticks[0] == 0 and ticks[-1] <= top < ticks[-1] + (ticks[1] - ticks[0])
    finally:
        d.close()


def test_scale_notebook_enlarges_the_cells_of_its_own_notebook_with_a_plus_and_puts_them_back(digits):
    """Dashboard(scale_notebook=True): A+ enlarges the notebook's cells too (JupyterLab's font variables ×1.5, set
    on every cell but the dashboard's, in the notebook that holds it); A+ released takes the rule away. What the
    browser makes of it is measured in tests/browser/test_layout_browser.py."""
    css = cells_css(1.5)
    assert cells_css(1.0) == ""
    assert f".jp-Notebook:has(.sw-dashboard.sw-scale-150.{CELLS_CLASS}) .jp-Cell:not(:has(.sw-dashboard))" in css
    for var in ("--jp-code-font-size", "--jp-content-font-size1", "--jp-cell-prompt-width"):
        # ×1.5 of the page root's own value (the theme's, or a font size the user chose)
        assert f"--sw-root{var[4:]}: var({var});" in css and f"{var}: calc(var(--sw-root{var[4:]}) * 1.5);" in css
    d = Dashboard(Trainer(digits, seed=0), scale_notebook=True)
    try:
        assert d.scale_notebook and CELLS_CLASS in d._dom_classes and "--sw-root" not in d.controls.css.value
        d.controls.scale.value = True  # A+
        assert d.scale == 1.5 and cells_css(1.5) in d.controls.css.value and scale_css(1.5) in d.controls.css.value
        assert "the notebook's cells too" in d.status
        d.controls.scale.value = False  # A-: the cells back to their size
        assert "--sw-root" not in d.controls.css.value and "the notebook's cells too" in d.status
        d.controls.scale.value = True
        d.scale_notebook = False  # the dashboard alone from now on
        assert CELLS_CLASS not in d._dom_classes and "--sw-root" not in d.controls.css.value and d.scale == 1.5
    finally:
        d.close()
    with pytest.raises(ValueError, match="scale_notebook must be True or False; got 'no'"):
        Dashboard(Trainer(digits), scale_notebook="no")
    with pytest.raises(ValueError, match="scale_notebook must be True or False"):
        Dashboard.from_dataset("no-such-set", scale_notebook=1)  # refused before any data is loaded
    d = Dashboard(Trainer(digits, seed=0))
    try:
        with pytest.raises(ValueError, match="dash.scale_notebook must be True or False; got None"):
            d.scale_notebook = None
        assert d.scale_notebook is False and CELLS_CLASS not in d._dom_classes
    finally:
        d.close()
    plain = Dashboard(Trainer(digits, seed=0), scale=1.5)  # not asked: the notebook's cells are left alone
    try:
        assert not plain.scale_notebook and "--sw-root" not in plain.controls.css.value
    finally:
        plain.close()
