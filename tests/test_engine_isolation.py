"""engine/ must stay headless: importing it never pulls in textual, rich or the tui package."""

import subprocess
import sys

ENGINE_MODULES = [
    "engine", "engine.config", "engine.recipes", "engine.loop", "engine.session", "engine.setup",
    "engine.data.sources", "engine.data.augment", "engine.data.batches", "engine.models.registry",
    "engine.models.user", "engine.models.summary", "engine.checkpoint", "engine.evaluate",
    "engine.runlog", "engine.logrows", "engine.remote", "engine.runs", "engine.signals",
    "engine.data.samples", "engine.data.stats", "engine.data.evaluation", "engine.data.shapes",
]


def test_engine_imports_no_ui_packages():
    """Every engine module imports in a fresh interpreter without textual, rich or tui."""
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE_MODULES!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'tui', 'textual_plotext'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine pulled in UI modules: {out.stdout}"


def test_config_parsing_does_not_import_torch():
    """The CLI validates flags before loading torch, so --help and bad flags answer instantly."""
    code = (
        "import sys\n"
        "from tui.cli import build_parser, config_from_args\n"
        "config_from_args(build_parser().parse_args(['--epochs', '2']))\n"
        "print('torch' in sys.modules, 'textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
