"""Run the benchmark cases side by side, print a table against the targets and write a JSON file.

    python benchmarks/bench.py                # every case, full size
    python benchmarks/bench.py --only P1 --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure this checkout's engine, installed or not

from benchmarks.common import Result, machine  # noqa: E402


def _p1(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p1_loop

    return p1_loop.run(args)


def _p2(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p2_cockpit

    return p2_cockpit.run(args)


def _p2cpu(args: argparse.Namespace) -> list[Result]:
    import tempfile

    from benchmarks import ui_cpu
    from benchmarks.p2_cockpit import write_mnist

    args.ui_epochs = args.ui_epochs or (2 if args.quick else 10)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        write_mnist(Path(tmp), args.mnist_size)
        return ui_cpu.run(args, Path(tmp))


def _p3(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p3_keys

    return p3_keys.run(args)


def _p4(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p4_charts

    return p4_charts.run(args)


def _p5(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p5_startup

    return p5_startup.run(args)


def _p6(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p6_history

    return p6_history.run(args)


def _p7(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p7_threads

    return p7_threads.run(args)


def _p8(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p8_checkpoints

    return p8_checkpoints.run(args)


def _p10(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p10_health

    return p10_health.run(args)


def _p13(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p13_runs

    return p13_runs.run(args)


def _p9(args: argparse.Namespace) -> list[Result]:
    from benchmarks import p9_distributed

    return p9_distributed.run(args)


# Each case is a function of the parsed arguments returning its rows.
CASES: dict[str, Callable[[argparse.Namespace], list[Result]]] = {
    "P1": _p1,
    "P2": _p2,
    "P2cpu": _p2cpu,
    "P3": _p3,
    "P4": _p4,
    "P5": _p5,
    "P6": _p6,
    "P7": _p7,
    "P8": _p8,
    "P9": _p9,
    "P10": _p10,
    "P13": _p13,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; --quick shrinks every case to a short run."""
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(CASES), metavar="CASE",
                        help=f"run only this case (repeatable): {', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="short runs: fewer repeats, smaller data")
    parser.add_argument("--repeats", type=int, help="repeats per side (default 5, quick 2)")
    parser.add_argument("--mnist-size", type=int, help="P1/P2 training images (default 60000, quick 10000)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="training device")
    parser.add_argument("--threads", type=int, help="torch intra-op threads for both sides (default: torch's)")
    parser.add_argument("--pty-sizes", default="80x24,200x60", help="P2 in a pty: terminal sizes, COLSxROWS,...")
    parser.add_argument("--pty-threads", default="1,2", help="P2 in a pty: the run's torch threads, N,...")
    from benchmarks.ui_cpu import add_arguments

    add_arguments(parser)  # P2cpu: --against REV, --ui-sizes, --ui-threads, --ui-epochs, --profile
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="folder for the JSON file")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.mnist_size = args.mnist_size or (10_000 if args.quick else 60_000)
    if args.repeats < 1 or args.mnist_size < 10:
        parser.error("--repeats must be >= 1 and --mnist-size >= 10")
    return args


def table(results: list[Result]) -> str:
    """The rows as a fixed-width text table."""
    head = ("case", "measure", "baseline", "ptviz", "result", "target", "met")
    rows = [(r.case, r.measure, r.baseline, r.ours, r.shown(r.value),
             "-" if r.target is None else ("≥ " if r.higher_is_better else "< ") + r.shown(r.target),
             "info" if r.met is None else "yes" if r.met else "NO") for r in results]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in (head, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cases; exit status 0 even when a target is missed (the table says which)."""
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    before = machine()
    results: list[Result] = []
    for name in args.only or list(CASES):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.extend(CASES[name](args))
    after = machine()
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report = {"machine": before, "load_average_after": after.get("load_average"),
              "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "results": [r.to_dict() for r in results]}
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{before['date']}, torch {before['torch']}, {before['cuda'] or before['cpu']}, "
          f"{before['torch_threads']} threads, load {before.get('load_average')} -> {after.get('load_average')}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
