"""Typed configuration: recipes match the tutorial, bad values are named, TOML and flags round-trip."""

import pytest

from ptviz.engine import config as cfgmod
from ptviz.engine.errors import ConfigError
from ptviz.engine.recipes import RECIPES, recipe
from ptviz.engine.transform_specs import TransformSpec, parse_pipeline
from ptviz.tui.cli import build_parser, config_from_args


def parse(*argv):
    return config_from_args(build_parser().parse_args(list(argv)))


def test_mnist_recipe_is_the_tutorials_section_3():
    c = recipe("mnist-mlp")
    assert (c.data.dataset, c.model.name, c.data.batch_size) == ("mnist", "mnist-mlp", 64)
    assert (c.data.mean, c.data.std, c.data.transforms) == ((0.5,), (0.5,), [])
    assert (c.optim.optimizer, c.optim.lr, c.train.epochs) == ("sgd", 0.01, 10)


def test_cifar_recipe_is_the_tutorials_section_5():
    c = recipe("cifar10-resnet18")
    assert (c.model.name, c.model.pretrained, c.model.freeze_backbone, c.model.num_classes) == (
        "resnet18", True, True, 10)
    assert [str(t) for t in c.data.transforms] == ["RandomCrop(size=32, padding=4)", "RandomHorizontalFlip(p=0.5)"]
    assert c.data.mean == (0.4914, 0.4822, 0.4465) and c.data.std == (0.2023, 0.1994, 0.2010)
    assert (c.data.batch_size, c.data.test_batch_size) == (128, 100)
    assert (c.optim.optimizer, c.optim.lr, c.optim.momentum, c.train.epochs) == ("sgd-momentum", 0.001, 0.9, 10)


def test_every_recipe_is_valid_and_every_field_documented():
    for name in RECIPES:
        assert cfgmod.validate(recipe(name)) == []
    docs = cfgmod.field_docs()
    missing = [p for p in cfgmod.field_paths() if not docs.get(p)]
    assert missing == []


@pytest.mark.parametrize("raw, reason", [("0", "must be >= 1"), ("-1", "must be >= 1"),
                                         ("abc", "'abc' is not a whole number")])
def test_bad_batch_size_names_field_and_value(raw, reason):
    with pytest.raises(ConfigError) as info:
        parse("--batch-size", raw)
    (error,) = info.value.errors
    assert error.path == "data.batch_size"
    assert reason in error.reason
    assert raw in str(error)


@pytest.mark.parametrize("argv, path, allowed", [
    (("--dataset", "imagenet"), "data.dataset", "must be one of: digits, mnist"),
    (("--model", "vgg"), "model.name", "must be one of: mnist-mlp, cnn, resnet18"),
    (("--lr", "0"), "optim.lr", "must be > 0"),
    (("--lr", "-0.1"), "optim.lr", "must be > 0"),
    (("--val-split", "1"), "data.val_split", "must be < 1"),
    (("--val-split", "1.5"), "data.val_split", "must be < 1"),
    (("--optimizer", "lbfgs"), "optim.optimizer", "sgd, sgd-momentum, adam, adamw"),
    (("--precision", "fp8"), "train.precision", "fp32, bf16, fp16"),
    (("--transforms", "RandomRotation(degrees=400)"), "data.transforms", "must be <= 180"),
    (("--std", "0.5,0"), "data.std", "each value must be >= 1e-06"),
])
def test_each_bad_value_is_refused_with_its_field(argv, path, allowed):
    with pytest.raises(ConfigError) as info:
        parse(*argv)
    assert [e.path for e in info.value.errors] == [path]
    assert allowed in info.value.errors[0].reason


def test_several_bad_flags_are_all_reported():
    with pytest.raises(ConfigError) as info:
        parse("--batch-size", "abc", "--dataset", "nope", "--lr", "0")
    assert {e.path for e in info.value.errors} == {"data.batch_size", "data.dataset", "optim.lr"}


def test_mean_and_std_lengths_must_agree():
    with pytest.raises(ConfigError) as info:
        parse("--mean", "0.5,0.5,0.5", "--std", "0.5")
    assert info.value.errors[0].path == "data.std"


def test_flags_override_toml_which_overrides_recipe(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('recipe = "mnist-mlp"\n[data]\nbatch_size = 32\ntransforms = ["RandomCrop(28, padding=2)"]\n'
                    '[optim]\nlr = 0.5\n')
    c = parse("--config", str(path), "--lr", "0.25", "--set", "optim.gamma=0.5", "--no-resident")
    assert c.recipe == "mnist-mlp" and c.data.dataset == "mnist"
    assert c.data.batch_size == 32 and c.optim.lr == 0.25 and c.optim.gamma == 0.5 and c.data.resident is False
    assert c.data.transforms == [TransformSpec("RandomCrop", {"size": 28, "padding": 2})]


def test_dump_toml_round_trips(tmp_path):
    c = recipe("cifar10-resnet18")
    path = tmp_path / "c.toml"
    path.write_text(cfgmod.dump_toml(c))
    back = cfgmod.apply_dict(recipe("digits-mlp"), cfgmod.load_toml(str(path)))
    assert cfgmod.to_plain(back) == cfgmod.to_plain(c) | {"recipe": "digits-mlp"}


@pytest.mark.parametrize("text, fragment", [
    ("[data\nbatch_size = 3\n", "is not valid TOML"),
    ("[data]\nbatch_size = \n", "line 2"),
    ("[data]\nbatch_sise = 3\n", "data.batch_sise: unknown field"),
    ("[training]\nepochs = 3\n", "[training]: unknown section"),
    ("[data]\nbatch_size = 'x'\n", "data.batch_size"),
])
def test_malformed_toml_gives_a_clear_message(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse("--config", str(path))
    assert fragment in str(info.value)


def test_a_toml_file_with_several_problems_names_them_all(tmp_path):
    """An unknown transform does not hide the out-of-range values beside it."""
    path = tmp_path / "bad.toml"
    path.write_text('[optim]\nlr = -1\n[data]\ntransforms = ["Bogus()"]\nbatch_size = 0\n')
    with pytest.raises(ConfigError) as info:
        parse("--config", str(path))
    message = str(info.value)
    assert "unknown transform 'Bogus'" in message
    assert "data.batch_size: got 0; must be >= 1" in message and "optim.lr: got -1.0" in message


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        parse("--config", "/nonexistent/run.toml")


def test_unknown_recipe():
    with pytest.raises(ConfigError, match="recipe: got 'nope'; must be one of: digits-mlp"):
        parse("--recipe", "nope")


def test_pipeline_text_parsing():
    specs = parse_pipeline("RandomCrop(32, padding=4), RandomHorizontalFlip(), ColorJitter(brightness=0.3)")
    assert [s.name for s in specs] == ["RandomCrop", "RandomHorizontalFlip", "ColorJitter"]
    assert specs[0].params == {"size": 32, "padding": 4}
    assert parse_pipeline("none") == [] and parse_pipeline("") == []
    with pytest.raises(ValueError, match="unknown transform"):
        parse_pipeline("Blur(3)")


def test_form_text_round_trip():
    c = recipe("cifar10-resnet18")
    for path in cfgmod.field_paths():
        value = cfgmod.get_value(c, path)
        if cfgmod.field_type(path) == "str" and value == "":
            continue
        assert cfgmod.parse_text(path, cfgmod.format_value(value)) == value, path
