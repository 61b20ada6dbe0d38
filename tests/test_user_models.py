"""Bring your own model: clear messages for broken user code, loading by path without shadowing."""

import os
import subprocess
import sys
import textwrap

import pytest
from torch import nn

from ptviz.engine.config import ModelConfig
from ptviz.engine.errors import ModelError
from ptviz.engine.models.registry import build_model

GOOD = """
from torch import nn

def make(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
"""


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def build(spec):
    return build_model(ModelConfig(name=spec), (1, 8, 8), 10)


@pytest.mark.parametrize("source, spec_factory, message, in_traceback", [
    ("def make(:\n    pass\n", "make", r"loading .*broken\.py failed: SyntaxError", "broken.py"),
    ("def make():\n    raise ValueError('no GPU here')\n", "make",
     r"calling .*broken\.py:make failed: ValueError: no GPU here", "raise ValueError"),
    ("def make():\n    return 42\n", "make", r"broken\.py:make returned int, not a torch\.nn\.Module", None),
    ("import sys\nsys.exit(3)\n", "make", r"loading .*broken\.py failed: SystemExit: 3", "sys.exit"),
    ("import my_layers\n", "make", r"ModuleNotFoundError.*loaded on its own", "import my_layers"),
    (GOOD, "missing", r"has no callable 'missing'", None),
])
def test_broken_model_files_explain_and_a_good_one_then_loads(tmp_path, source, spec_factory, message,
                                                               in_traceback):
    """Each failure is one ModelError naming the file; the user's traceback is kept in .details."""
    broken = write(tmp_path, "broken.py", source)
    with pytest.raises(ModelError, match=message) as info:
        build(f"{broken}:{spec_factory}")
    assert "\n" not in str(info.value)
    if in_traceback:
        assert "Traceback" in info.value.details and in_traceback in info.value.details
    good = write(tmp_path, "good.py", GOOD)
    model = build(f"{good}:make")
    assert isinstance(model, nn.Sequential) and model[1].out_features == 10


def test_a_user_folder_with_its_own_engine_and_tui_does_not_shadow_ptviz(tmp_path, monkeypatch):
    """The user's engine.py and tui/ sit next to the model; loading by path touches neither them nor sys.path."""
    write(tmp_path, "engine.py", "raise RuntimeError('user engine imported')\n")
    write(tmp_path, "tui/__init__.py", "raise RuntimeError('user tui imported')\n")
    write(tmp_path, "model.py", GOOD)
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    model = build("model.py:make")
    assert isinstance(model, nn.Module)
    assert sys.path == path_before
    assert "engine" not in sys.modules and "tui" not in sys.modules
    assert not (tmp_path / "__pycache__").exists()


def test_a_research_repo_with_its_own_engine_trains_by_module_path(tmp_path):
    """DeiT, MAE and DETR keep an engine.py; with PYTHONPATH=. ptviz still starts, trains the user's model
    by module path, and never runs their engine.py or tui/ (everything of ours lives under ptviz.*)."""
    marker = tmp_path / "user-code-ran"
    write(tmp_path, "engine.py", f"open({str(marker)!r}, 'a').write('engine.py\\n')\nimport config\n")
    write(tmp_path, "tui/__init__.py", f"open({str(marker)!r}, 'a').write('tui\\n')\n")
    write(tmp_path, "my_models.py", GOOD)
    env = {**os.environ, "PYTHONPATH": ".", "OMP_NUM_THREADS": "1"}
    outputs = []
    for argv in (["-m", "ptviz", "--headless", "--model", "my_models:make", "--epochs", "1", "--runs-dir", "runs"],
                 ["-m", "ptviz.tui", "--help"]):
        out = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    assert "Epoch 1, Loss: " in outputs[0] and "usage: ptviz-tui" in outputs[1]
    assert not marker.exists(), marker.read_text()
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoints" / "last.pt").is_file()
    assert 'name = "my_models:make"' in (run / "config.toml").read_text()


def test_an_edited_file_is_read_again_in_the_same_session(tmp_path):
    """Fixing a model file and loading it again runs the new source, even within the same second and size."""
    path = write(tmp_path, "net.py", "from torch import nn\nWIDTH = 11\ndef make():\n    return nn.Linear(64, WIDTH)\n")
    assert build(f"{path}:make").out_features == 11
    path.write_text(path.read_text().replace("WIDTH = 11", "WIDTH = 10"))
    assert build(f"{path}:make").out_features == 10


def test_package_module_factory_passes_num_classes_by_keyword(tmp_path, monkeypatch):
    write(tmp_path, "byo_pkg_5/__init__.py", "")
    write(tmp_path, "byo_pkg_5/nets.py", """
        from torch import nn

        def tiny(in_features=64, num_classes=2):
            return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build("byo_pkg_5.nets:tiny")[1].out_features == 10
    with pytest.raises(ModelError, match=r"no module named 'byo_pkg_5x'"):
        build("byo_pkg_5x.nets:tiny")
