"""The parts of scaling out that need no second process: launch flags, shards, the Ranks table."""

import pytest
import torch
from rich.console import Console

from ptviz.engine.distributed.env import from_environ
from ptviz.engine.distributed.shard import Shard
from ptviz.engine.errors import ConfigError
from ptviz.engine.events import RanksReported
from ptviz.tui.cli import main
from ptviz.tui.launch import parse_options, torchrun_arguments, without_launch_flags
from ptviz.tui.train.ranks_panel import render_ranks


@pytest.mark.parametrize("args, field, words", [
    (("0", None, None, None, None), "--nproc", "at least 1"),
    (("two", None, None, None, None), "--nproc", "whole number"),
    (("2", "2", None, None, None), "--rdzv-endpoint", "needs the HOST:PORT"),
    (("2", "2", "2", "10.0.0.1:29400", None), "--node-rank", "below --nnodes"),
    (("2", "1", None, "no-port", None), "--rdzv-endpoint", "HOST:PORT"),
    (("2", None, None, None, "-1"), "--max-restarts", "at least 0"),
])
def test_bad_launch_flags_are_named_with_what_to_give(args, field, words):
    with pytest.raises(ConfigError) as caught:
        parse_options(*args)
    (error,) = caught.value.errors
    assert error.path == field and words in error.reason


def test_bad_launch_flag_exits_2_with_one_line_and_starts_nothing(capsys):
    assert main(["--headless", "--nproc", "0"]) == 2
    err = capsys.readouterr().err
    assert "--nproc" in err and "Traceback" not in err


def test_workers_get_the_command_line_without_the_launch_flags():
    argv = ["--headless", "--nproc", "2", "--epochs", "3", "--max-restarts=1", "--rdzv-endpoint", "h:1", "--lr", "0.1"]
    assert without_launch_flags(argv) == ["--headless", "--epochs", "3", "--lr", "0.1"]
    options = parse_options("2", None, None, None, "1")
    assert torchrun_arguments(options, ["--headless"])[-4:] == ["--standalone", "-m", "ptviz", "--headless"]
    two = parse_options("4", "2", "1", "10.0.0.1:29400", None)
    args = torchrun_arguments(two, [])
    assert args[args.index("--rdzv-backend") + 1] == "static" and args[args.index("--node-rank") + 1] == "1"


def test_world_size_one_is_the_plain_path():
    assert from_environ({}) is None
    env = from_environ({"RANK": "0", "WORLD_SIZE": "1"})
    assert env is not None and not env.multi


@pytest.mark.parametrize("n, world", [(1438, 2), (359, 2), (10, 3), (7, 8)])
def test_shards_are_disjoint_cover_the_epoch_and_training_ones_are_even(n, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    evaluation = [Shard(r, world, pad=False).of(order) for r in range(world)]
    assert sorted(torch.cat(evaluation).tolist()) == list(range(n))  # each sample exactly once
    for r, part in enumerate(evaluation):
        assert Shard(r, world, pad=False).global_positions(torch.arange(len(part))).tolist() == \
            list(range(r, n, world))
    training = [Shard(r, world).of(order) for r in range(world)]
    assert len({len(part) for part in training}) == 1 and len(training[0]) == Shard(0, world).size(n)
    assert set(torch.cat(training).tolist()) == set(range(n))
    assert all(torch.equal(Shard(r, world).of(order), training[r]) for r in range(world))  # a pure function


def test_the_ranks_table_marks_a_straggler_against_the_median():
    report = RanksReported(step=40, hosts=("a", "a", "b"), devices=("cuda:0", "cuda:1", "cuda:0"),
                           steps=(40, 40, 40), step_seconds=(0.010, 0.011, 0.030), data_wait=(0.001, 0.0, 0.02),
                           memory=(2 << 30, 2 << 30, 3 << 30))
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    console.print(render_ranks(report))
    lines = console.export_text().splitlines()
    assert lines[0].split()[:4] == ["#", "host", "device", "step"]
    assert lines[3].split()[:6] == ["2", "b", "cuda:0", "40", "30.0", "2.73"]
    assert lines[1].split()[5] == "0.91"
