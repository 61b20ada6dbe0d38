"""The README's screenshots, made from a real run on the embedded digits data: Train (finished), Data samples,
Evaluation and the Model tree, saved as SVG under docs/screenshots/.

    python scripts/screenshots.py            # regenerate all four
    python scripts/screenshots.py --size 120x36

The cockpit runs under Textual's test driver at a fixed size; images are drawn as coloured half-cells, as
over a plain SSH link (the driver has no terminal to ask about graphics). Each shot waits for the cockpit's
background work (data preview, statistics, model summary) to finish before it is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
EPOCHS = 4


async def shoot(size: tuple[int, int], out: Path) -> list[Path]:
    """Train digits for a few epochs in the cockpit and save the four screens."""
    from textual.widgets import TabbedContent

    from benchmarks.cockpit_driver import settle
    from ptviz.engine.recipes import recipe
    from ptviz.tui.app import PtvizApp

    config = recipe("digits-mlp")
    config.train.epochs = EPOCHS
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="ptviz-shots-") as tmp:
        os.chdir(tmp)  # the run folder goes under ./runs, the path the Model tab's form shows
        config.output.runs_dir = "runs"
        app = PtvizApp(config, defer_tabs=False)
        async with app.run_test(size=size) as pilot:

            def save(name: str) -> None:
                saved.append(Path(app.save_screenshot(f"{name}.svg", path=str(out))))

            await settle(app, pilot, timeout=120)
            await pilot.press("s")
            while app.run_state not in ("finished", "stopped", "failed", "diverged"):
                await pilot.pause(0.1)
            await settle(app, pilot, timeout=120)
            await pilot.pause(1.2)  # the frame after the run's last events has drawn them
            save("train-finished")
            await pilot.press("2")
            await settle(app, pilot, timeout=120)
            save("data-samples")
            views = app.query_one("#data-tab").query_one(TabbedContent)
            while views.active != "evaluation-tab":
                await pilot.press("greater_than_sign")
                await settle(app, pilot, timeout=120)
            save("evaluation")
            await pilot.press("3")
            await settle(app, pilot, timeout=120)
            save("model-tree")
    return saved


def main(argv: list[str] | None = None) -> int:
    """Parse the size and write the SVGs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="140x42", help="terminal size, COLSxROWS (default 140x42)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the SVGs")
    args = parser.parse_args(argv)
    columns, rows = (int(v) for v in args.size.split("x"))
    os.environ["PTVIZ_IMAGES"] = "halfcell"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot((columns, rows), args.out)):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
