"""Packaging: one installed name, and every package folder listed in pyproject.toml."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_installed():
    """A package folder missing from [tool.setuptools] packages would be absent from a wheel install."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = setup["package-dir"]
    on_disk = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([name, *rel.parts]))
    assert on_disk == set(setup["packages"])
    assert setup["package-data"]["ptviz.tui"] == ["*.tcss"] and (ROOT / "tui" / "app.tcss").is_file()


def test_app_module_holds_composition_bindings_and_top_level_handlers_only():
    """app.py stays small (STYLE.md): its handlers hand on to the feature modules; growing past this means a move."""
    lines = (ROOT / "tui" / "app.py").read_text().splitlines()
    assert len(lines) < 350, f"tui/app.py has {len(lines)} lines: move the new code into a module of its own"
