"""`--nproc N`: run the same command under torchrun's elastic agent, one worker process per rank.

ptviz does not launch anything itself: it calls torchrun's own entry (torch.distributed.run's parser and
run(), the code behind the `torchrun` command) in this process, with `-m ptviz <the same arguments>` as the
workers' command. So `ptviz-tui --nproc 2 ...` and `torchrun --nproc-per-node 2 -m ptviz --headless ...`
are one code path, with torchrun's rendezvous, restarts and signal handling; calling it in-process rather
than exec'ing the torchrun script lets ptviz turn the agent's outcome (which rank failed, and how) into its
own exit codes and messages.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ptviz.engine.config import RunConfig
from ptviz.engine.errors import ConfigError, FieldError

DEBUG_VARIABLE = "PTVIZ_DEBUG"
FAILED, CONFIG_ERROR = 1, 2
ENDPOINT = re.compile(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")


@dataclass(frozen=True)
class LaunchOptions:
    """torchrun's options, as the ptviz command line takes them."""

    nproc: int = 1  # worker processes on this machine (one per GPU on CUDA)
    nnodes: str = "1"  # machines taking part ("2", or torchrun's elastic "MIN:MAX")
    node_rank: int | None = None  # this machine's rank (static rendezvous); None: c10d assigns one
    rdzv_endpoint: str = ""  # host:port of the rendezvous (node 0's address) for several machines
    max_restarts: int = 0  # how often the agent restarts the workers after one failed

    @property
    def wanted(self) -> bool:
        """Whether to start under torchrun at all (one process with no restarts trains in this process)."""
        return self.nproc > 1 or self.nnodes != "1" or self.max_restarts > 0 or bool(self.rdzv_endpoint)


FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint", "--max-restarts")


def add_launch_flags(parser: argparse.ArgumentParser) -> None:
    """The launch flags of the main command and of resume (passed on to torchrun)."""
    group = parser.add_argument_group("[launch] several processes, through torchrun")
    group.add_argument("--nproc", metavar="N", help="train with N processes on this machine (one per GPU on CUDA, "
                       "gloo on the CPU); 'gpu' takes every GPU of the machine")
    group.add_argument("--nnodes", metavar="N", help="machines taking part (each runs the same command); "
                       "needs --rdzv-endpoint")
    group.add_argument("--node-rank", metavar="R", help="this machine's number, 0 on the machine of --rdzv-endpoint")
    group.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="where the machines meet: node 0's address "
                       "and a free port")
    group.add_argument("--max-restarts", metavar="N", help="restart the workers from the last checkpoint up to N "
                       "times when one fails or is killed (default 0)")


def options_from_args(args: argparse.Namespace) -> LaunchOptions:
    """The launch options the flags give; ConfigError names every bad one."""
    return parse_options(args.nproc, args.nnodes, args.node_rank, args.rdzv_endpoint, args.max_restarts)


def without_launch_flags(argv: Sequence[str]) -> list[str]:
    """`argv` less the launch flags and their values (the workers' own arguments)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if len(name) > 3 and any(flag.startswith(name) for flag in FLAGS):  # argparse takes unique prefixes too
            skip = "=" not in item
            continue
        out.append(item)
    return out


def parse_options(nproc: str | None, nnodes: str | None, node_rank: str | None, rdzv_endpoint: str | None,
                  max_restarts: str | None) -> LaunchOptions:
    """The options from command-line text; ConfigError names every bad one."""
    errors: list[FieldError] = []

    def whole(flag: str, text: str | None, default: int, least: int) -> int:
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            errors.append(FieldError(flag, text, "must be a whole number"))
            return default
        if value < least:
            errors.append(FieldError(flag, text, f"must be at least {least}"))
        return value

    procs = _gpus_or(nproc, errors) if nproc == "gpu" else whole("--nproc", nproc, 1, 1)
    nodes = (nnodes or "1").strip()
    if not re.fullmatch(r"\d+(:\d+)?", nodes) or any(int(n) < 1 for n in nodes.split(":")):
        errors.append(FieldError("--nnodes", nodes, "must be a number of machines (2) or a range MIN:MAX (1:4)"))
    rank = None if node_rank is None else whole("--node-rank", node_rank, 0, 0)
    endpoint = (rdzv_endpoint or "").strip()
    if endpoint and not ENDPOINT.fullmatch(endpoint):
        errors.append(FieldError("--rdzv-endpoint", endpoint, "must be HOST:PORT, e.g. 10.0.0.1:29400"))
    if nodes != "1" and not endpoint:
        errors.append(FieldError("--rdzv-endpoint", "", f"--nnodes {nodes} needs the HOST:PORT every machine meets "
                                 "at (node 0's address and a free port)"))
    if rank is not None and nodes.isdigit() and rank >= int(nodes):
        errors.append(FieldError("--node-rank", str(rank), f"must be below --nnodes ({nodes})"))
    restarts = whole("--max-restarts", max_restarts, 0, 0)
    if errors:
        raise ConfigError(errors)
    return LaunchOptions(procs, nodes, rank, endpoint, restarts)


def _gpus_or(text: str, errors: list[FieldError]) -> int:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        errors.append(FieldError("--nproc", text, "this machine has no GPU; give a number of processes"))
    return max(1, count)


def torchrun_arguments(options: LaunchOptions, worker_args: Sequence[str]) -> list[str]:
    """torchrun's command line for `options`, running `python -m ptviz <worker_args>` as each worker."""
    args = ["--nproc-per-node", str(options.nproc), "--nnodes", options.nnodes,
            "--max-restarts", str(options.max_restarts), "--monitor-interval", "0.2"]
    if options.rdzv_endpoint:
        # A fixed node rank needs the static rendezvous (node 0 then hosts rank 0); otherwise c10d ranks the
        # machines as they arrive, and restarts may change the set of machines.
        backend = "static" if options.node_rank is not None else "c10d"
        args += ["--rdzv-backend", backend, "--rdzv-endpoint", options.rdzv_endpoint, "--rdzv-id", "ptviz"]
        if options.node_rank is not None:
            args += ["--node-rank", str(options.node_rank)]
    else:
        args += ["--standalone"]  # one machine: torchrun's own rendezvous on a free local port
    return [*args, "-m", "ptviz", *worker_args]


def launch(options: LaunchOptions, worker_args: Sequence[str]) -> int:
    """Run the workers under torchrun's agent until they end; the exit code tells how (see tui/cli.py)."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if not os.environ.get(DEBUG_VARIABLE):
        _quiet_agent()
    if options.nproc > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = "1"  # what torchrun picks too, without its warning: no oversubscribed cores
    args = torchrun.parse_args(torchrun_arguments(options, worker_args))
    try:
        torchrun.run(args)
    except ChildFailedError as exc:
        return _failed(exc)
    except SignalException as exc:  # the agent passed the signal on to every worker, which saved and ended
        return 128 + int(exc.sigval)
    return 0


def _quiet_agent() -> None:
    """The agent's log lines (rendezvous, 'sending SIGTERM', 'failed (exitcode: 1)') are for debugging:
    ptviz says what happened in its own words, and PTVIZ_DEBUG=1 shows them."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        # Set on each logger: torch's logging set-up gives its loggers handlers and levels of their own.
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")) \
                and isinstance(logger, logging.Logger):
            logger.setLevel(logging.CRITICAL)


def _failed(exc: object) -> int:
    """The exit code for a worker group that failed: rank 0's own code when it has one (it printed why);
    otherwise the first failing rank's error, from the error file torchrun's agent read (traceback and line)."""
    failures = getattr(exc, "failures", {}) or {}
    lead = failures.get(0)
    if lead is not None and lead.exitcode > 0:
        return int(lead.exitcode)
    rank, first = min(failures.items(), key=lambda item: item[1].timestamp) if failures else (None, None)
    if first is None:
        return FAILED
    told = (getattr(first, "error_file_data", None) or {}).get("message")
    if isinstance(told, dict) and told.get("message"):  # the rank recorded its exception (tui/headless.py)
        stack = (told.get("extraInfo") or {}).get("py_callstack", "")
        if stack:
            print(f"traceback of rank {rank}:\n{stack.rstrip()}", file=sys.stderr)
        print(f"ptviz-tui: error: rank {rank} failed: {told['message']}", file=sys.stderr)
        return FAILED
    how = f"was killed by {_signal_name(-first.exitcode)}" if first.exitcode < 0 else \
        f"exited with code {first.exitcode}"
    print(f"ptviz-tui: error: rank {rank} (pid {first.pid}) {how}; the other ranks were stopped", file=sys.stderr)
    return FAILED


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def in_cockpit(config: RunConfig, headless_argv: Sequence[str], poll_seconds: float = 0.1) -> int:
    """`--nproc` in the cockpit: the ranks train headless under torchrun in the background and the cockpit attaches
    to rank 0's run folder, so its keys reach every rank; quitting detaches and leaves the run training."""
    import subprocess
    import tempfile
    import time

    log = tempfile.NamedTemporaryFile("w", prefix="ptviz-launch-", suffix=".log", delete=False)
    print(f"starting the run under torchrun (its output: {log.name})", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "ptviz", *headless_argv], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # outlives the cockpit: q detaches
    log.close()
    run_dir = None
    try:
        while run_dir is None:
            run_dir = _announced_run_dir(Path(log.name))
            if run_dir is None and proc.poll() is not None:
                sys.stderr.write(Path(log.name).read_text())
                return proc.returncode
            if run_dir is None:
                time.sleep(poll_seconds)  # rank 0 sets up the run folder: poll the output it writes
    except KeyboardInterrupt:  # Ctrl+C before the cockpit opened: the run that was starting ends too
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        return 128 + signal.SIGINT
    from .entry import run_app

    code = run_app(config, attach=run_dir, finished=[])  # return here (not end the process): one more line to say
    if proc.poll() is None:
        print(f"the run goes on in the background (pid {proc.pid}): ptviz-tui attach {run_dir}  |  "
              f"ptviz-tui send {run_dir} stop; its output: {log.name}")
    return code


def _announced_run_dir(log: Path) -> Path | None:
    """The run folder rank 0 printed, once its control socket is up (None before)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("run directory: "):
            folder = Path(line.split(": ", 1)[1].strip())
            return folder if (folder / "control").exists() else None
    return None
