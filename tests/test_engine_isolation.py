"""ptviz.engine must stay headless: importing it never pulls in textual, rich or ptviz.tui."""

import pkgutil
import subprocess
import sys

import ptviz.engine


def engine_modules() -> list[str]:
    """Every module of ptviz.engine, found by walking the package (new modules are covered as they come)."""
    found = pkgutil.walk_packages(ptviz.engine.__path__, prefix="ptviz.engine.")
    return ["ptviz.engine", *sorted(m.name for m in found)]


def test_engine_imports_no_ui_packages():
    """Every engine module imports in a fresh interpreter without textual, rich or ptviz.tui."""
    modules = engine_modules()
    assert "ptviz.engine.loop" in modules and "ptviz.engine.data.sources" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('textual', 'rich', 'textual_plotext') or m.startswith('ptviz.tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine pulled in UI modules: {out.stdout}"


def test_config_parsing_does_not_import_torch():
    """The CLI validates flags before loading torch, so --help and bad flags answer instantly."""
    code = (
        "import sys\n"
        "from ptviz.tui.cli import build_parser, config_from_args\n"
        "config_from_args(build_parser().parse_args(['--epochs', '2']))\n"
        "print('torch' in sys.modules, 'textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
