"""The headless command: tutorial-style output, exit codes, and bad input that writes nothing."""

import os
import subprocess
import sys

import pytest


def run_cli(*argv, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ptviz", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_headless_default_run_prints_epoch_lines_and_total_time(tmp_path):
    out = run_cli("--headless", "--epochs", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("Epoch ") and "Loss: " in line and "Test accuracy: " in line for line in lines) == 2
    assert any(line.startswith("Training time: ") for line in lines)
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "config.toml").is_file() and (runs[0] / "checkpoints" / "last.pt").is_file()


def test_headless_output_redirected_to_a_file_keeps_each_line_whole(tmp_path):
    """Under nohup or `> log` on a narrow terminal, long lines (paths) are not broken or padded."""
    runs = tmp_path / ("a-rather-long-folder-name-for-runs-" * 2)
    out = subprocess.run([sys.executable, "-m", "ptviz", "--headless", "--epochs", "1", "--runs-dir", str(runs)],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "40"}, timeout=300)
    assert out.returncode == 0, out.stderr
    (run,) = runs.iterdir()
    lines = out.stdout.splitlines()
    assert f"run directory: {run}" in lines
    assert f"checkpoint (final) saved: {run / 'checkpoints' / 'last.pt'}" in lines
    assert not [line for line in lines if line != line.rstrip()]  # no padding to the terminal's width
    assert "" not in lines and "━" not in out.stdout  # no progress bar, and no blank line where it was
    missing = subprocess.run([sys.executable, "-m", "ptviz", "--headless", "--recipe", "mnist-mlp", "--root", "none"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert missing.returncode == 2 and missing.stdout == "" and "mnist files not found" in missing.stderr


@pytest.mark.parametrize("argv, fragment", [
    (("--batch-size", "0"), "data.batch_size: got 0; must be >= 1"),
    (("--batch-size", "-1"), "data.batch_size: got -1; must be >= 1"),
    (("--batch-size", "abc"), "data.batch_size: got 'abc'"),
    (("--dataset", "imagenet"), "data.dataset: got 'imagenet'"),
    (("--model", "vgg16"), "model.name: got 'vgg16'"),
    (("--lr", "0"), "optim.lr: got 0.0; must be > 0"),
    (("--val-split", "1"), "data.val_split: got 1.0; must be < 1"),
    (("--recipe", "mnist-mlp", "--root", "nowhere"), "data.root: mnist files not found in nowhere/MNIST/raw"),
    (("--model", "resnet18", "--pretrained", "--set", "data.mean=0.5"), "model.pretrained"),
    (("--model", "cnn", "--freeze=-featres"), "model.freeze: -featres: the model has no module named 'featres' "
                                              "(did you mean 'features'?)"),
    (("--freeze=-",), "model.freeze: - leaves no parameter trainable; unfreeze a module after it, e.g. +fc3"),
])
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(tmp_path, argv, fragment):
    env_home = tmp_path / "torch-home"
    out = subprocess.run([sys.executable, "-m", "ptviz", "--headless", *argv], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "TORCH_HOME": str(env_home)}, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "nowhere").exists()


def test_a_freeze_typo_in_a_toml_file_exits_2_with_one_line(tmp_path):
    (tmp_path / "run.toml").write_text('[model]\nname = "cnn"\nfreeze = ["-", "+fc", "+featurs"]\n')
    out = run_cli("--headless", "--config", "run.toml", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("ptviz-tui: error: model.freeze: +featurs: the model has no module named "
                          "'featurs' (did you mean 'features'?)\n")
    assert not (tmp_path / "runs").exists()


def test_malformed_toml_exits_2(tmp_path):
    (tmp_path / "bad.toml").write_text("[data]\nbatch_size = \n")
    out = run_cli("--headless", "--config", "bad.toml", cwd=tmp_path)
    assert out.returncode == 2 and "bad.toml is not valid TOML" in out.stderr and "line 2" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()


def test_help_lists_every_field_flag(tmp_path):
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    for flag in ("--batch-size", "--lr", "--transforms", "--freeze-backbone", "--precision", "--runs-dir"):
        assert flag in out.stdout
