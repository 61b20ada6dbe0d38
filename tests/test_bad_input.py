"""Bad values for every kind of field, by flag and by TOML: exit 2, the field named, no run folder; and the
values that must work (any valid seed, any text in a string field) do."""

import tomllib

import pytest
import torch

from ptviz.engine import config as cfgmod
from ptviz.engine.data.batches import Batches
from ptviz.engine.data.sources import Split
from ptviz.engine.loop import train
from ptviz.engine.recipes import recipe
from ptviz.tui.cli import main

# (field, value as typed after --set FIELD=, value as written in a TOML file), by field kind.
BAD = [
    # int
    ("data.batch_size", "nan", "nan"),
    ("data.batch_size", "1e999", "inf"),
    ("data.batch_size", "2.5", "2.5"),
    ("train.epochs", "-1", "-1"),
    ("train.seed", str(2**63), str(2**63)),
    ("train.max_steps", str(2**64), str(2**64)),
    ("model.num_classes", "1", "1"),  # digits has 10 classes: "Target 1 is out of bounds" mid-step
    # float
    ("optim.lr", "nan", "nan"),
    ("optim.lr", "-inf", "-inf"),
    ("optim.lr", "1e39", "1e39"),
    ("output.checkpoint_minutes", "inf", "inf"),
    ("optim.momentum", "1", "true"),
    # floats
    ("data.mean", "nan", "[nan]"),
    ("data.mean", "0.5,1e300", "[0.5, 1e300]"),
    ("data.mean", "-1e999", "[true]"),
    ("data.std", "0", "0"),
    ("data.std", "1e-300", "[1e-300]"),
    ("data.std", "inf", '["0.5"]'),
    # pipeline parameters, integer and float
    ("data.transforms", "RandomCrop(nan)", '[{name = "RandomCrop", size = nan}]'),
    ("data.transforms", "RandomCrop(32, padding=inf)", '["RandomCrop(32, padding=inf)"]'),
    ("data.transforms", "Resize(1e30)", '[{name = "Resize", size = 1e30}]'),
    ("data.transforms", "CenterCrop(2.5)", '[{name = "CenterCrop", size = true}]'),
    ("data.transforms", "RandomHorizontalFlip(p=nan)", '[{name = "RandomHorizontalFlip", p = inf}]'),
    ("data.transforms", "RandomRotation(1e999)", '[{name = "RandomRotation", degrees = -1e400}]'),
    ("data.transforms", "RandomErasing(scale=nan)", '[{name = "RandomErasing", scale = "big"}]'),
    # str
    ("data.dataset", "imagenet", '"imagenet"'),
    ("train.device", "tpu", '"cpu\\n"'),
    ("data.root", "da\0ta", '"da\\u0000ta"'),
    ("data.root", "\udcffdata", "5"),
    ("model.name", "vgg16", '"vgg16"'),
    ("model.freeze", "-fc;", '["-fc\\n"]'),
    ("output.runs_dir", "a-file", '"a-file"'),  # exists as a file: a raw OS error, exit 1
    # bool
    ("data.download", "maybe", '"maybe"'),
    ("train.compile", "2", "2"),
]


@pytest.mark.parametrize("how", ["flag", "toml"])
@pytest.mark.parametrize("path, typed, written", BAD, ids=[f"{p}={t!r}" for p, t, _ in BAD])
def test_a_bad_value_exits_2_naming_its_field_and_creates_no_run_folder(tmp_path, monkeypatch, capsys,
                                                                         path, typed, written, how):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    if how == "flag":
        argv = ["--set", f"{path}={typed}"]
    else:
        section, name = path.split(".")
        (tmp_path / "bad.toml").write_text(f"[{section}]\n{name} = {written}\n")
        argv = ["--config", "bad.toml"]
    code = main(["--headless", *argv])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert f"error: {path}" in err and "Traceback" not in out + err
    assert not (tmp_path / "runs").exists() and (tmp_path / "a-file").is_file()


def test_an_empty_config_file_name_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--headless", "--config", ""]) == 2
    assert "--config: got ''; needs the path of a TOML file" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


HOSTILE = ["line\nbreak", "tab\there", 'a "quote"', "back\\slash\\", "ctrl\x01\x1b\x1f\x7f", "return\r",
           '"""', "'''", "ünïcødé €", "[data]\nroot = 'x'", ""]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_string_field_survives_config_toml_whatever_it_holds(text):
    """config.toml must read back as written (attach and resume read it), whatever a string field holds."""
    config = cfgmod.RunConfig()
    paths = [p for p in cfgmod.field_paths() if cfgmod.field_type(p) == "str"]
    assert "data.root" in paths and "output.runs_dir" in paths
    config.recipe = text
    for path in paths:
        cfgmod.set_value(config, path, text)
    data = tomllib.loads(cfgmod.dump_toml(config))
    back = cfgmod.apply_dict(cfgmod.RunConfig(), data)
    assert data["recipe"] == text
    assert {p: cfgmod.get_value(back, p) for p in paths} == {p: text for p in paths}


# The order of epoch e was randperm seeded with seed * 100_003 + e, which generators take below 2**64.
WORKING_SEEDS = [0, 7, 123_456_789, 10**14, (2**64 - 1 - 3) // 100_003]


def old_order(n, seed, epoch):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


@pytest.mark.parametrize("seed", WORKING_SEEDS)
def test_seeds_that_worked_keep_their_sample_order(seed):
    """Old runs resume exactly: every seed that worked before orders every epoch as it did."""
    batches = Batches(Split("train", torch.zeros(50, dtype=torch.long)), 8, torch.device("cpu"),
                      shuffle=True, seed=seed, resident=False)
    for epoch in range(4):
        assert torch.equal(batches.order(epoch), old_order(50, seed, epoch))


def test_any_valid_seed_trains(digits_config):
    """Seeds above ~1.8e14 overflowed the epoch order's generator; every seed the field allows works."""
    config = recipe("digits-mlp")
    config.output.runs_dir = ""
    config.train.seed = 2**63 - 1
    config.train.max_steps = 3
    assert cfgmod.check_field("train.seed", config.train.seed) is None
    assert train(config).step == 3
    again = Batches(Split("train", torch.zeros(50, dtype=torch.long)), 8, torch.device("cpu"), shuffle=True,
                    seed=2**63 - 1, resident=False)
    assert torch.equal(again.order(3), again.order(3)) and not torch.equal(again.order(3), again.order(4))


NUMERIC = [p for p in cfgmod.field_paths() if cfgmod.field_type(p) in ("int", "float", "floats")]


@pytest.mark.parametrize("path", NUMERIC)
def test_an_out_of_range_number_names_its_field_reason_and_flag(tmp_path, monkeypatch, capsys, path):
    """`--lr -1` reads like `--batch-size 2.5`: the field, why, and the flag the value came by."""
    from ptviz.tui.cli import flag_for

    monkeypatch.chdir(tmp_path)
    huge = str(2**70) if cfgmod.field_type(path) == "int" else "1e300"
    for argv, origin in (([f"{flag_for(path)}={huge}"], f"(flag {flag_for(path)})"),
                         (["--set", f"{path}={huge}"], f"(--set {path})")):
        assert main(["--headless", *argv]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert [line for line in lines if line.startswith(f"ptviz-tui: error: {path}: got ")], lines
        assert all(line.endswith(origin) for line in lines), lines


def test_lr_minus_one_says_the_flag(capsys):
    assert main(["--headless", "--lr", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "ptviz-tui: error: optim.lr: got -1.0; must be > 0 (flag --lr)"
