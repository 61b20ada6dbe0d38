"""The Runs view's reading of run folders, without the UI: rows, damaged files, differing settings, tree, notes."""

from __future__ import annotations

import json

import numpy as np

from runs_helpers import synthetic_run
from ptviz.engine.storage.catalog import Catalog, differing_settings, read_record, tree_order
from ptviz.engine.storage.interventions import interventions
from ptviz.engine.storage.notes import Notes, parse_tags, read_notes, write_notes
from ptviz.tui.runs.buckets import BucketSeries
from ptviz.tui.runs.columns import columns_for, sorted_records, to_csv
from ptviz.tui.runs.curves import RunCurves
from ptviz.tui.runs.filter import matches


def test_a_row_holds_settings_progress_and_results(tmp_path):
    run = synthetic_run(tmp_path, "a", lr=0.05, seconds=12.5)
    r = read_record(run)
    assert (r.state, r.recipe, r.dataset, r.model) == ("finished", "digits-mlp", "digits", "mnist-mlp")
    assert (r.step, r.total_steps, r.epoch, r.epochs) == (180, 180, 4, 4)
    assert r.best_accuracy == r.last_accuracy == 1 - 0.3 / 4 and r.seconds == 12.5
    assert r.settings["optim.lr"] == "0.05" and r.problems == ()
    assert r.last_loss is not None and r.last_loss < 0.2


def test_only_the_settings_that_differ_become_columns(tmp_path):
    records = [read_record(synthetic_run(tmp_path, name, lr=lr)) for name, lr in (("a", 0.05), ("b", 0.1), ("c", 0.01))]
    assert differing_settings(records) == ["optim.lr"]
    assert [c.title for c in columns_for(differing_settings(records))][:3] == ["run", "state", "lr"]
    assert differing_settings(records[:1]) == []



def test_a_task_column_shows_the_file_not_its_whole_path():
    """data.task differs between a recipe run and task runs: the column shows 'charlm.py:make', not the absolute
    path that pushed every other column off an 80-column table; sorting and filters keep the full value."""
    from pathlib import Path

    from ptviz.engine.storage.catalog import RunRecord

    spec = "/work/repo/examples/charlm.py:make"
    records = [RunRecord(Path("a"), "finished", settings={"data.task": spec}),
               RunRecord(Path("b"), "finished", settings={"data.task": ""})]
    (column,) = [c for c in columns_for(["data.task"]) if c.key == "set:data.task"]
    assert [column.text(r) for r in records] == ["charlm.py:make", ""]
    assert column.value(records[0]) == spec


def test_a_task_runs_row_names_no_recipe_data_or_model_it_did_not_train(tmp_path):
    """config.toml of a --task run still holds the default recipe's fields; the row says 'task' and leaves data and
    model empty rather than 'digits-mlp, digits, mnist-mlp'."""
    run = synthetic_run(tmp_path, "a", lr=0.05)
    toml = (run / "config.toml").read_text()
    (run / "config.toml").write_text(toml.replace('task = ""', 'task = "examples/charlm.py:make"'))
    record = read_record(run)
    assert record.settings["data.task"] == "examples/charlm.py:make"
    assert (record.recipe, record.dataset, record.model) == ("task", "", "")
    assert read_record(synthetic_run(tmp_path, "b", lr=0.05)).recipe == "digits-mlp"

def test_damaged_folders_each_show_their_reason_and_the_rest_load(tmp_path):
    """A folder that is not a run, a log cut mid-line, a damaged summary, a config from a newer version."""
    good = synthetic_run(tmp_path, "good", lr=0.05)
    (tmp_path / "notes-folder").mkdir()
    cut = synthetic_run(tmp_path, "cut", lr=0.05)
    with open(cut / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"kind":"step","step":181,"ep')
    broken_summary = synthetic_run(tmp_path, "summary", lr=0.05)
    (broken_summary / "summary.json").write_text("{not json")
    future = synthetic_run(tmp_path, "future", lr=0.05)
    (future / "config.toml").write_text('format = 2\nrecipe = "digits-mlp"\n[optim]\nlr = 0.3\nlookahead = 5\n'
                                        '[schedule]\nwarmup = 100\n')
    unknown = synthetic_run(tmp_path, "unknown", lr=0.05)
    (unknown / "config.toml").write_text('recipe = "digits-mlp"\n[optim]\nlr = 0.3\nlookahead = 5\n')
    catalog = Catalog(tmp_path)
    catalog.refresh()
    by_name = {r.name: r for r in catalog.rows()}
    assert set(by_name) == {"good", "notes-folder", "cut", "summary", "future", "unknown"}
    assert by_name["good"].problems == ()
    assert not by_name["notes-folder"].is_run and "not a run" in by_name["notes-folder"].problems[0]
    assert "last line was cut short" in by_name["cut"].problems[0] and by_name["cut"].step == 180
    assert "summary.json is damaged" in by_name["summary"].problems[0]
    assert "format 2, newer than this ptviz reads" in by_name["future"].problems[0]
    assert by_name["future"].settings["optim.lr"] == "0.3"  # what it knows is still shown
    assert "optim.lookahead" in by_name["unknown"].problems[0] and "newer version" in by_name["unknown"].problems[0]


def test_garbled_lines_are_skipped_with_a_notice_and_the_curves_still_load(tmp_path):
    """A log written without the binary copy beside it (as before the copy existed) is parsed whole."""
    run = synthetic_run(tmp_path, "garbled", lr=0.05)
    lines = (run / "metrics.jsonl").read_bytes().split(b"\n")
    lines[50] = b'{"kind":"step","st\x00\xff garbage'
    lines[120] = b"#" + lines[120]
    (run / "metrics.jsonl").write_bytes(b"\n".join(lines))
    curves = RunCurves(run)
    assert curves.poll()
    assert curves.problems == ["metrics.jsonl: 2 garbled lines skipped"]
    assert curves.loss.count == 178 and len(curves.epoch_array("test_acc")) == 4


def test_curves_grow_from_new_bytes_only_and_start_over_when_the_log_is_cut_back(tmp_path):
    run = synthetic_run(tmp_path, "live", lr=0.05)
    log = run / "metrics.jsonl"
    data = log.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    log.write_bytes(data[:half - 10])  # the last line is being written
    curves = RunCurves(run)
    curves.poll()
    first = curves.loss.count
    assert first > 0 and curves.problems == []
    with open(log, "ab") as fh:
        fh.write(data[half - 10:])
    assert curves.poll() and curves.loss.count == 180 and not curves.poll()
    assert len(curves.epoch_array("epoch")) == 4
    log.write_bytes(data[:half])  # a resume cut the log back: read again from the start
    assert curves.poll() and curves.loss.count == first + 1


def test_bucket_series_stays_bounded_and_keeps_the_mean():
    series = BucketSeries(capacity=64)
    x = np.arange(1, 100_001, dtype=float)
    for part in np.array_split(x, 37):  # arriving in uneven batches, as a live log does
        series.extend(part, part * 2)
    assert len(series) <= 65 and series.count == 100_000
    xs, ys = series.means()
    assert np.allclose(ys, 2 * xs) and xs[0] < 2000 and xs[-1] > 98_000
    assert series.nbytes < 64 * 40 + series.size * 16


def test_forks_are_listed_under_their_parent(tmp_path):
    parent = synthetic_run(tmp_path, "b-parent", lr=0.05)
    synthetic_run(tmp_path, "a-child", lr=0.01, parent=parent, branch_epoch=2)
    synthetic_run(tmp_path, "c-other", lr=0.1)
    order = [(r.name, depth) for r, depth in tree_order([read_record(p) for p in sorted(tmp_path.iterdir())])]
    assert order == [("b-parent", 0), ("a-child", 1), ("c-other", 0)]


def test_notes_and_tags_live_in_the_run_folder(tmp_path):
    run = synthetic_run(tmp_path, "a", lr=0.05)
    write_notes(run, Notes("warmup helped", parse_tags("#baseline, sweep sweep")))
    assert json.loads((run / "notes.json").read_text()) == {"note": "warmup helped", "tags": ["baseline", "sweep"]}
    record = read_record(run)
    assert read_notes(run).tags == ("baseline", "sweep") and record.notes.text == "#baseline #sweep warmup helped"
    assert matches(record, "#sweep lr=0.05 warmup") and not matches(record, "lr=0.1") and not matches(record, "#x")


def test_interventions_are_read_from_the_log(tmp_path):
    run = synthetic_run(tmp_path, "a", lr=0.05)
    assert [(i.step, i.text()) for i in interventions(run)] == [(90, "lr 0.05 → 0.025"),
                                                               (90, "freeze fc1 (10 trainable)")]



def test_lr_changes_made_while_paused_go_from_the_rate_set_before(tmp_path):
    """Three lr changes at one step (a paused run): each starts from the one before, not from the last step's rate."""
    run = synthetic_run(tmp_path, "a", lr=0.05)
    with open(run / "metrics.jsonl", "a") as fh:
        for lr in (0.1, 0.05, 0.02):
            fh.write(json.dumps({"kind": "lr", "step": 180, "lr": lr}) + "\n")
    assert [i.text() for i in interventions(run)][-3:] == ["lr 0.05 → 0.1", "lr 0.1 → 0.05", "lr 0.05 → 0.02"]

def test_sorting_puts_runs_without_a_value_last_and_csv_has_plain_numbers(tmp_path):
    records = [read_record(synthetic_run(tmp_path, n, lr=0.05, accuracy_gain=g)) for n, g in (("a", 0), ("b", 0.05))]
    (tmp_path / "empty").mkdir()
    records.append(read_record(tmp_path / "empty"))
    columns = columns_for([])
    best = next(c for c in columns if c.key == "best")
    assert [r.name for r in sorted_records(records, best, reverse=True)] == ["b", "a", "empty"]
    assert [r.name for r in sorted_records(records, best, reverse=False)] == ["a", "b", "empty"]
    lines = to_csv(records[:1], columns).splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["path", "run", "state", "best acc"]
    assert lines[1].split(",")[3] == repr(1 - 0.3 / 4)


def test_the_lr_column_shows_the_rate_now_marked_where_it_left_the_setting(tmp_path):
    """A 2-epoch synthetic run halves its lr live after its last step (an "lr" row ends its log); a 4-epoch one
    logs steps at its setting after the change: the first trains at 0.025 now, the second at 0.05."""
    from ptviz.tui.runs.lr_column import with_lr

    moved, kept = read_record(synthetic_run(tmp_path, "moved", lr=0.05, epochs=2)), read_record(
        synthetic_run(tmp_path, "kept", lr=0.05, epochs=4))
    assert (moved.lr, kept.lr) == (0.025, 0.05)
    assert differing_settings([moved, kept]) == ["train.epochs"]
    paths = with_lr(differing_settings([moved, kept]), [moved, kept])
    assert paths == ["optim.lr", "train.epochs"]
    (lr,) = [c for c in columns_for(paths) if c.key == "set:optim.lr"]
    assert (lr.text(moved), lr.text(kept)) == ("0.025 (set 0.05)", "0.05")
    assert sorted_records([kept, moved], lr, reverse=False) == [moved, kept]  # sorted by the rate now


def test_the_overlay_legend_names_the_rate_a_run_trains_at_now(tmp_path):
    """The same two runs overlaid: the legend says lr=0.025 for the one changed live (before: lr=0.05 for both, the
    configured rate), and names lr even for runs set alike, as the table's lr column does."""
    from ptviz.tui.runs.overlay import run_labels

    moved, kept = read_record(synthetic_run(tmp_path, "moved", lr=0.05, epochs=2)), read_record(
        synthetic_run(tmp_path, "kept", lr=0.05, epochs=4))
    assert run_labels([moved, kept]) == {moved.path: "lr=0.025 epochs=2", kept.path: "lr=0.05 epochs=4"}


def test_a_single_runs_legend_names_the_run(tmp_path):
    """One run drawn, its rate changed live: the legend names the run (before: 'lr=0.025', which says nothing of
    which run it is); drawn with another, the rates tell them apart as before."""
    from ptviz.tui.runs.overlay import run_labels

    moved = read_record(synthetic_run(tmp_path, "20261129-120000-digits-mlp", lr=0.05, epochs=2))
    assert moved.lr == 0.025 and run_labels([moved]) == {moved.path: "20261129-120000-digits-mlp"}
