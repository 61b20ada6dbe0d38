"""P5: `ptviz-tui --help` wall time, and the time to the cockpit's first painted screen.

Both start the real command in a fresh process, several times, and take the median. `--help` runs with
its output to a pipe; a separate run checks that it left torch unimported. The cockpit runs in a
pseudo-terminal of 160×48: the time is from starting the process until the first frame holding both the
status line and the chart titles has been written; then `q` quits it. What dominates start-up is read
from `python -X importtime` of the cockpit's modules.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result

ROOT = Path(__file__).resolve().parents[1]
HELP_TARGET_S = 0.5
FRAME_MARKERS = (b"IDLE", b"loss / step")


def command() -> list[str]:
    """The installed console script beside this Python, else `python -m tui` (same code either way)."""
    script = Path(sys.executable).with_name("ptviz-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ptviz"]


def environment() -> dict[str, str]:
    """This checkout first on the path, so the command runs the code being measured."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


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


def first_paint_seconds(runs_dir: Path, size: tuple[int, int] = (160, 48)) -> float:
    """Seconds from starting the cockpit in a pseudo-terminal until its first full frame was written."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**environment(), "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
    start = time.perf_counter()
    proc = subprocess.Popen([*command(), "--runs-dir", str(runs_dir)], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True, close_fds=True)
    os.close(slave)
    seen, painted = b"", None
    try:
        deadline = start + 60
        while painted is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:
                    break
                seen += chunk
                plain = re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", seen)
                if all(marker in plain for marker in FRAME_MARKERS):
                    painted = time.perf_counter() - start
        os.write(master, b"q")
        _drain_until_exit(proc, master)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    if painted is None:
        raise RuntimeError(f"the cockpit painted no full frame in 60 s; it wrote: {seen[-2000:]!r}")
    return painted


def _drain_until_exit(proc: subprocess.Popen, master: int, timeout: float = 15.0) -> None:
    """Keep reading the terminal (a full pty would block the app) until the process ends."""
    deadline = time.perf_counter() + timeout
    while proc.poll() is None and time.perf_counter() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                os.read(master, 1 << 16)
            except OSError:
                break
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


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
        paints = [first_paint_seconds(Path(tmp)) for _ in range(repeats)]
    imports = import_times()
    help_row = Result(
        case="P5", measure=f"ptviz-tui --help ({'imports torch!' if torch_in_help else 'torch not imported'})",
        value=statistics.median(helps), unit="s", target=HELP_TARGET_S, higher_is_better=False,
        raw={"seconds": helps, "torch_imported": torch_in_help, "command": command()})
    heavy = ", ".join(f"{k} {v:.0f} ms" for k, v in list(imports["heaviest_ms"].items())[:3])
    paint_row = Result(
        case="P5", measure=f"start to first painted screen, 160×48 pty (imports: {heavy})",
        value=statistics.median(paints), unit="s", target=None, higher_is_better=False,
        raw={"seconds": paints, "imports": imports, "terminal": "160x48 pseudo-terminal, TERM=xterm-256color",
             "which": shutil.which("ptviz-tui")})
    return [help_row, paint_row]
