"""P5: `ptviz-tui --help` wall time, and the time to the cockpit's first painted screen.

Both start the real command in a fresh process, several times, and take the median. `--help` runs with
its output to a pipe; a separate run checks that it left torch unimported. The cockpit runs in a
pseudo-terminal of 160×48 that answers like tmux (benchmarks/pty_cockpit.py): the time is from starting the
process until the first frame holding both the status line and the chart titles has been written. The
Data and Model tabs (torch, torchvision, the data) load after that frame: the time until the log says
torch is loaded is reported beside it. Then `q` quits, timed too. What dominates start-up is read from
`python -X importtime` of the cockpit's modules.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result
from benchmarks.pty_cockpit import Terminal, command, environment

HELP_TARGET_S = 0.5
PAINT_TARGET_S = 1.5
FRAME_MARKERS = (r"IDLE", r"loss / step")


def help_seconds() -> float:
    """Wall seconds of one `ptviz-tui --help`."""
    start = time.perf_counter()
    done = subprocess.run([*command(), "--help"], env=environment(), capture_output=True, timeout=60)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or b"usage: ptviz-tui" not in done.stdout:
        raise RuntimeError(f"ptviz-tui --help failed: {done.stderr[-2000:]!r}")
    return seconds


def help_imports_torch() -> bool:
    """Whether `--help` imports torch (it must not)."""
    probe = ("import sys\nfrom ptviz.tui.cli import main\nsys.argv = ['ptviz-tui', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    done = subprocess.run([sys.executable, "-c", probe], env=environment(), capture_output=True, text=True,
                          timeout=60)
    return "NO-TORCH" not in done.stdout


def first_paint_seconds(runs_dir: Path, size: tuple[int, int] = (160, 48)) -> dict[str, float]:
    """Seconds from starting the cockpit in a pseudo-terminal until its first full frame was written, until
    torch and the tabs were loaded, and from `q` until the process ended."""
    with Terminal([*command(), "--runs-dir", str(runs_dir)], size) as term:
        painted = max(term.appears(marker, 0, timeout=60) for marker in FRAME_MARKERS) - term.started
        loaded = term.appears(r"torch \S+ loaded in", 0, timeout=120) - term.started
        quit_seconds = term.exit_seconds(b"q", timeout=60)
    return {"painted": painted, "tabs_loaded": loaded, "quit": quit_seconds}


def import_times(module: str = "ptviz.tui.app", top: int = 6) -> dict[str, Any]:
    """Cumulative import microseconds of the heaviest top-level packages under `python -X importtime`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], env=environment(),
                          capture_output=True, text=True, timeout=120)
    packages: dict[str, int] = {}
    total = 0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        cumulative, depth, name = int(match.group(1)), len(match.group(2)), match.group(3)
        if depth == 1:  # a module the probe imported directly
            total = max(total, cumulative)
        root = name.split(".")[0]
        if "." not in name or depth <= 1:
            packages[root] = max(packages.get(root, 0), cumulative)
    heaviest = dict(sorted(packages.items(), key=lambda kv: -kv[1])[:top])
    return {"module": module, "total_ms": total / 1000, "heaviest_ms": {k: v / 1000 for k, v in heaviest.items()},
            "torch_imported": "torch" in packages}


def run(args: argparse.Namespace) -> list[Result]:
    """P5 rows: median --help time (torch must stay unimported) and median time to the first frame."""
    import tempfile

    repeats = 2 if args.quick else 7
    helps = [help_seconds() for _ in range(repeats)]
    torch_in_help = help_imports_torch()
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        starts = [first_paint_seconds(Path(tmp)) for _ in range(repeats)]
    paints = [s["painted"] for s in starts]
    loaded = statistics.median(s["tabs_loaded"] for s in starts)
    imports = import_times()
    help_row = Result(
        case="P5", measure=f"ptviz-tui --help ({'imports torch!' if torch_in_help else 'torch not imported'})",
        value=statistics.median(helps), unit="s", target=HELP_TARGET_S, higher_is_better=False,
        raw={"seconds": helps, "torch_imported": torch_in_help, "command": command()})
    heavy = ", ".join(f"{k} {v:.0f} ms" for k, v in list(imports["heaviest_ms"].items())[:3])
    paint_row = Result(
        case="P5", measure=f"start to first painted screen, 160×48 pty (tabs and torch loaded at {loaded:.2f} s; "
                           f"imports: {heavy})",
        value=statistics.median(paints), unit="s", target=PAINT_TARGET_S, higher_is_better=False,
        raw={"seconds": paints, "runs": starts, "imports": imports,
             "terminal": "160x48 pseudo-terminal answering like tmux, TERM=xterm-256color",
             "which": shutil.which("ptviz-tui")})
    return [help_row, paint_row]
