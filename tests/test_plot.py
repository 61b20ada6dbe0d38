"""The braille chart renderer and the history reduction behind it: exact sizes, placed dots, kept spikes."""

import numpy as np
import pytest

from ptviz.tui.train.history import Series, minmax_indices
from ptviz.tui.train.plot import Trace, draw


def plain(rows):
    return ["".join(text for text, _ in row) for row in rows]


def test_rows_fill_the_chart_exactly_with_title_frame_ticks_and_legend():
    """Every row is as wide as the chart; the title, the y ticks, the x labels and the legend are where expected."""
    x = np.arange(1, 101, dtype=float)
    rows = draw(60, 16, "loss / step", [Trace(x, 100 - x, "cyan", "raw")])
    lines = plain(rows)
    assert len(lines) == 16 and all(len(line) == 60 for line in lines)
    assert lines[0].strip() == "loss / step"
    assert lines[1].lstrip().startswith("┌") and lines[-2].lstrip().startswith("└")
    assert lines[2].startswith("100┤") and lines[13].startswith("  0┤")  # top and bottom ticks: round values
    assert lines[2].endswith("⢕⢕ raw │")  # the line starts top left, so the legend takes the free top-right corner
    assert lines[-1].split()[0] == "1" and lines[-1].split()[-1] == "100"
    assert [run for run in rows[2] if run[1] == "cyan"][-1][0] == "⢕⢕"  # the mark in the series colour


def test_a_legend_never_covers_a_line():
    """Where every corner of the plot holds dots, the legend goes above the frame, entries side by side."""
    x = np.arange(200, dtype=float)
    traces = [Trace(x, np.sin(x / 7 + k), colour, f"run {k}") for k, colour in enumerate(("cyan", "yellow", "green"))]
    rows = draw(50, 14, "loss", traces)
    lines = plain(rows)
    assert len(lines) == 14 and all(len(line) == 50 for line in lines)
    assert lines[1].startswith("⢕⢕ run 0  ⢕⢕ run 1  ⢕⢕ run 2") and lines[2].lstrip().startswith("┌")
    assert [run[1] for run in rows[1] if "⢕" in run[0]] == ["cyan", "yellow", "green"]
    assert not any("run" in line for line in lines[3:])
    crowded = plain(draw(14, 14, "loss", traces))  # too narrow for two entries a row: they wrap
    assert [line.rstrip() for line in crowded[1:4]] == ["⢕⢕ run 0", "⢕⢕ run 1", "⢕⢕ run 2"]


def test_a_falling_line_runs_from_top_left_to_bottom_right():
    """Dots land where the data is: high at the left, low at the right."""
    x = np.arange(50, dtype=float)
    lines = plain(draw(40, 12, "t", [Trace(x, -x, "green")]))
    left = lines[1].index("┌") + 1
    canvas = [line[left:-1] for line in lines[2:-2]]
    assert lines[2].lstrip().startswith("0┤") and "-0┤" not in lines[2]  # not "-0"
    assert canvas[0][0] != " " and canvas[0][-1] == " "
    assert canvas[-1][-1] != " " and canvas[-1][0] == " "


def test_log_y_leaves_out_what_it_cannot_place_and_labels_real_values():
    """Zero, negative and NaN values are dropped on a log axis; ticks show the values, not their logarithms."""
    x = np.arange(5, dtype=float)
    y = np.array([10.0, 1.0, 0.0, -1.0, np.nan])
    lines = plain(draw(50, 12, "loss (log y)", [Trace(x, y, "cyan")], log_y=True))
    assert lines[2].lstrip().startswith("10┤") and lines[9].lstrip().startswith("1┤")


def test_an_empty_chart_is_a_titled_frame():
    lines = plain(draw(30, 8, "samples/s", []))
    assert lines[0].strip() == "samples/s"
    assert lines[1] == "┌" + "─" * 28 + "┐" and lines[-1] == "└" + "─" * 28 + "┘"


def test_reduction_keeps_spikes_and_skips_non_finite_values():
    """A million points reduce to two per column; the one spike and the true minimum survive; NaN never wins."""
    y = np.full(1_000_000, 1.0, dtype=np.float32)
    y[123_456], y[654_321], y[5] = 50.0, -3.0, np.nan
    s = Series(smoothed=True)
    s.extend(np.arange(len(y)), y)
    x, raw, smooth = s.reduced(100, window=10)
    assert len(x) == 200 and raw.max() == 50.0 and raw.min() == -3.0 and not np.isnan(raw).any()
    assert 123_456 in x and 654_321 in x
    assert np.isfinite(smooth).all()
    assert list(minmax_indices(np.array([3.0, 1.0, 2.0]), 10)) == [0, 1, 2]  # short series stay whole


def test_series_version_changes_with_the_points_and_memory_stays_compact():
    s, t = Series(), Series()
    assert s.version != t.version
    before = s.version
    s.append(1, 2.0)
    assert s.version != before
    s.extend(np.arange(2, 1_000_001), np.ones(999_999))
    assert s.nbytes < 13 * 2**21  # x float64 + y float32, capacity rounded up to a power of two


def test_plotext_renderer_draws_the_same_rows_as_plotext_would():
    """PTVIZ_CHARTS=plotext: plotext draws the chart; the rows fill the size exactly, in the traces' colours."""
    from ptviz.tui.train import plot_plotext
    from ptviz.tui.train.charts import chart_renderer

    assert chart_renderer("plotext") == (plot_plotext.draw, None)
    assert chart_renderer("") == (draw, None)
    fallback, warning = chart_renderer("fancy")
    assert fallback is draw and "PTVIZ_CHARTS='fancy'" in warning and "braille or plotext" in warning
    x = np.arange(100, dtype=float)
    rows = plot_plotext.draw(60, 14, "loss / step", [Trace(x, 100 - x, "bright_black", "raw"),
                                                      Trace(x, 50 + 0 * x, "cyan", "mean")])
    lines = plain(rows)
    assert len(lines) == 14 and all(len(line) == 60 for line in lines)
    assert lines[0].strip() == "loss / step" and "raw" in "".join(lines) and "mean" in "".join(lines)
    colours = {colour for row in rows for _, colour in row}
    assert {"color(6)", "color(8)"} <= colours  # plotext's cyan, and its grey for bright_black
    flat = [line for line in lines if "⠉" in line or "⠒" in line or "⣀" in line]
    assert flat  # the constant series draws a level braille line


@pytest.mark.parametrize("epochs, labels", [(10, ["1", "4", "7", "10"]), (2, ["1", "2"]), (4, ["1", "2", "3", "4"]),
                                            (8, ["1", "3", "6", "8"])])
def test_epoch_axes_are_labelled_with_whole_epochs(epochs, labels):
    """x ticks of whole-number series sit on whole numbers and say so without decimals."""
    x = np.arange(1, epochs + 1, dtype=float)
    rows = draw(60, 12, "accuracy", [Trace(x, np.linspace(0.5, 0.9, epochs), "green")])
    text = "".join(run for run, _ in rows[-1])
    assert text.split() == labels
    bottom = "".join(run for run, _ in rows[-2]).strip()[1:-1]
    ticks = [i for i, c in enumerate(bottom) if c == "┬"]
    assert ticks[0] == 0 and ticks[-1] == len(bottom) - 1  # the first and last epochs at the frame's ends
    for tick, label in zip(ticks, labels):  # each tick where its epoch is drawn
        assert tick == round((int(label) - 1) * (len(bottom) - 1) / (epochs - 1))


def test_a_fractional_x_axis_keeps_decimal_labels():
    x = np.array([0.5, 1.0, 1.5, 2.0])
    rows = draw(60, 12, "loss", [Trace(x, np.array([1.0, 0.8, 0.7, 0.6]), "blue")])
    assert "".join(run for run, _ in rows[-1]).split()[0] == "0.50"


def test_y_ticks_are_round_values_each_with_its_label_and_the_legend_never_covers_a_line():
    """Ticks fall on round values (0.0 0.5 ... 2.5 for a loss from 2.36 to 0.06, evenly spaced, every one
    labelled); the legend covers no dot, so a line through the canvas's top-left corner stays whole."""
    x = np.arange(1, 47, dtype=float)
    y = 2.3 * np.exp(-x / 10) + 0.06
    rows = draw(50, 16, "loss / step", [Trace(x, y, "white", "raw"), Trace(x, y, "cyan", "mean of 10")])
    lines = plain(rows)
    labels = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert labels == ["2.5", "2.0", "1.5", "1.0", "0.5", "0.0"]
    assert "⢕⢕ raw" in "\n".join(lines) and "⢕⢕ mean of 10" in "\n".join(lines)
    top = next(i for i, line in enumerate(lines) if "┌" in line) + 1
    first_column = [line[4] for line in lines[top:top + 3]]  # just right of the 3-wide labels and the axis
    assert any(c != " " for c in first_column)  # the line's first point, where a legend could sit
    assert not any("⢕" in line[4:6] for line in lines)


def test_one_epoch_gets_one_x_tick_and_a_constant_one_y_tick_on_its_line():
    """After the first epoch the axis says 1 (not 0.50 0.83 1.17 1.50); a fixed lr is labelled where it is drawn."""
    rows = plain(draw(40, 10, "accuracy", [Trace(np.array([1.0]), np.array([80.0]), "cyan")]))
    assert rows[-1].split() == ["1"]
    x = np.arange(1, 47, dtype=float)
    rows = plain(draw(40, 9, "lr", [Trace(x, np.full(46, 0.05), "magenta")]))
    (labelled,) = [line for line in rows if "┤" in line]
    assert labelled.split("┤")[0].strip() == "0.05" and any(dots in labelled for dots in "⠉⠒⠤⣀")


def test_log_rows_break_paths_after_a_slash_not_mid_name():
    """A checkpoint line at 40 columns: the words, then the path in pieces that each end with '/'."""
    from ptviz.tui.train.log_pane import break_points

    line = "07:00:10 checkpoint (epoch) at step 45: /tmp/runs/20261202-065938-digits-mlp/checkpoints/epoch-0001.pt"
    rows = [line[a:b] for a, b in break_points(line, 40)]
    assert rows == ["07:00:10 checkpoint (epoch) at step 45:", "/tmp/runs/20261202-065938-digits-mlp/",
                    "checkpoints/epoch-0001.pt"]
    assert all(len(r) <= 40 for r in rows)
    word = "x" * 25
    assert [word[a:b] for a, b in break_points(word, 10)] == ["x" * 10, "x" * 10, "x" * 5]  # nowhere to break: cut
