"""Subcommands: resume a run, attach the cockpit to a running one, list or compare runs, fork one, send a command."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ptviz.engine import config as cfgmod
from ptviz.engine.errors import ConfigError, UserError

from .cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _fail, add_field_flags, apply_args, flag_for, report


def main(argv: Sequence[str]) -> int:
    """Run the subcommand named by argv[0]."""
    name, rest = argv[0], list(argv[1:])
    try:
        return COMMANDS[name](rest)
    except ConfigError as exc:
        for error in exc.errors:
            _fail(str(error), EXIT_CONFIG)
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - UserError and anything else: one line and an exit code
        return report(exc)


def _run_dir(text: str) -> Path:
    from ptviz.engine.storage.runs import is_run_dir

    path = Path(text)
    if not path.is_dir():
        raise UserError(f"{path}: no such run directory")
    if not is_run_dir(path):
        raise UserError(f"{path} is not a run directory (it has no config.toml or metrics.jsonl)")
    return path


# ----------------------------------------------------------------------------- resume


def resume(argv: list[str]) -> int:
    """ptviz-tui resume RUN_DIR [--headless] [--checkpoint FILE] [flags]."""
    parser = argparse.ArgumentParser(
        prog="ptviz-tui resume",
        description="Continue a run exactly where its newest valid checkpoint left it (mid-epoch included), "
                    "in the same run directory: logs past that checkpoint are dropped and written again.",
        epilog="Flags override the saved configuration, e.g. --epochs 20 to train longer, --lr 0.005 for a new "
               "learning rate from here on; a change that cannot continue the run exactly is refused with the "
               "reason. A model given as your own code (file.py:factory) runs only when you name it again "
               "(--model, or a yes in the cockpit). A run of several processes continues with as many (--nproc "
               "changes that, and the result is then no longer bit-exact).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (runs/<date>-<time>-<recipe>)")
    parser.add_argument("--headless", action="store_true", help="continue without the cockpit, printing progress")
    parser.add_argument("--checkpoint", metavar="FILE", help="continue from this checkpoint (a file in "
                        "RUN_DIR/checkpoints such as epoch-0003.pt, or a path) instead of the newest")
    from .launch import add_launch_flags, options_from_args

    add_launch_flags(parser)
    add_field_flags(parser)
    args = parser.parse_args(argv)
    from ptviz.engine.distributed.env import from_environ, is_follower

    if is_follower():  # rank 0 of the workers reads the run folder and hands the run to the others
        from .headless import run_headless

        return run_headless(cfgmod.RunConfig())
    launch = options_from_args(args)
    run_dir = _run_dir(args.run_dir)
    _refuse_running(run_dir)

    from ptviz.engine import trust
    from ptviz.engine.storage.checkpoint import remove_stale_temp_files

    for folder in (run_dir, run_dir / "checkpoints"):
        remove_stale_temp_files(folder)  # left by a save a kill cut short; nobody writes here (checked above)
    state, path = _checkpoint(run_dir, args.checkpoint)
    stored = config_of(state["config"], source=str(path))
    config = apply_args(config_of(state["config"], source=str(path)), args)
    unconfirmed = trust.unconfirmed(stored, named_fields(args))
    if stored.data.task == cfgmod.TASK_FROM_FIT and "data.task" not in named_fields(args):
        raise UserError(f"{run_dir} trained a Task handed to ptviz.fit() in a script; continue it from that script "
                        f"with ptviz.fit(task, resume={str(run_dir)!r}), or name a factory: --task path/task.py:make")
    if unconfirmed and args.headless:
        raise UserError(_confirm_code_message(run_dir, unconfirmed, argv))
    _check_work_left(run_dir, config, state)
    if from_environ() is None:
        launch = _launch_for(state, launch, args.nproc is not None)
        if launch.wanted:
            print(f"resuming {run_dir} from {path.name} with {_processes(launch)}: step {state['step']}, "
                  f"epoch {state['epoch'] + 1}, batch {state['batch_in_epoch']}", flush=True)
            return _resume_launched(launch, argv, args.headless, config)
    print(f"resuming {run_dir} from {path.name}: step {state['step']}, epoch {state['epoch'] + 1}, "
          f"batch {state['batch_in_epoch']}")
    if args.headless:
        from .headless import run_headless

        return run_headless(config, resume=state, run_dir=run_dir)
    from .entry import run_app

    return run_app(config, resume=state, run_dir=run_dir, unconfirmed_code=unconfirmed)


def _launch_for(state: dict, launch, nproc_given: bool):
    """The launch that continues a checkpoint: as many processes as wrote it, unless --nproc says otherwise."""
    from .launch import LaunchOptions

    saved = int(state.get("world_size", 1) or 1)
    if not nproc_given and launch.nnodes == "1" and saved > 1:
        launch = LaunchOptions(saved, launch.nnodes, launch.node_rank, launch.rdzv_endpoint, launch.max_restarts)
    world = launch.nproc * int(launch.nnodes) if launch.nnodes.isdigit() else None
    if world is not None and world != saved:
        print(f"ptviz-tui: notice: the run was trained by {saved} process(es) and continues with {world}; the "
              f"result is no longer bit-exact", file=sys.stderr)
    return launch


def _processes(launch) -> str:
    nodes = f" on each of {launch.nnodes} machines" if launch.nnodes != "1" else ""
    return f"{launch.nproc} process{'es' if launch.nproc > 1 else ''}{nodes}"


def _resume_launched(launch, argv: list[str], headless: bool, config: cfgmod.RunConfig) -> int:
    """Continue under torchrun: every worker runs `resume RUN_DIR --headless` (rank 0 reads the folder)."""
    from .launch import launch as run_launched, without_launch_flags

    if headless:
        return run_launched(launch, ["resume", *without_launch_flags(argv)])
    from .launch import in_cockpit

    return in_cockpit(config, ["resume", *argv, "--headless"])


def _checkpoint(run_dir: Path, name: str | None) -> tuple[dict, Path]:
    """The checkpoint to resume from: `name` (in RUN_DIR/checkpoints, or a path), else the newest valid one."""
    from ptviz.engine.errors import CheckpointError
    from ptviz.engine.storage.checkpoint import load_checkpoint, load_newest

    if name:
        path = Path(name)
        if not path.is_file() and (run_dir / "checkpoints" / name).is_file():
            path = run_dir / "checkpoints" / name
        return load_checkpoint(path), path
    try:
        state, path, skipped = load_newest(run_dir)
    except CheckpointError as exc:
        if any((run_dir / "checkpoints").glob("*.pt")):
            raise
        raise UserError(f"{run_dir} holds no checkpoint: it ended before its first one was saved. Start it "
                        f"again with: ptviz-tui --config {run_dir / 'config.toml'}") from exc
    for why in skipped:
        print(f"ptviz-tui: warning: skipped {why}", file=sys.stderr)
    return state, path


def named_fields(args: argparse.Namespace) -> dict[str, object]:
    """The configuration fields the command line gave a value (flags and --set), with those values."""
    named: dict[str, object] = {k[len("field:"):]: v for k, v in vars(args).items()
                                if k.startswith("field:") and v is not None}
    for item in getattr(args, "set", []):
        path, sep, text = item.partition("=")
        if sep:
            named[path.strip()] = text
    return named


def _confirm_code_message(run_dir: Path, unconfirmed: dict[str, str], argv: list[str]) -> str:
    """Why resume refuses to import a run folder's code, and the exact command that confirms it."""
    from ptviz.engine import trust

    shown = "\n".join(f"  {trust.describe(path, spec)}" for path, spec in unconfirmed.items())
    flags = [part for path, spec in unconfirmed.items()
             for part in ((flag_for(path), spec) if path in cfgmod.field_paths() else ("--set", f"{path}={spec}"))]
    command = shlex.join(["ptviz-tui", "resume", *argv, *flags])
    return (f"{run_dir} names code that resuming would import and run:\n{shown}\n"
            f"ptviz runs such code only when you name it yourself. If you trust this run folder, resume with:\n"
            f"  {command}")


def config_of(data: dict, source: str) -> cfgmod.RunConfig:
    """The RunConfig a checkpoint or config.toml describes."""
    config = cfgmod.RunConfig()
    if isinstance(data.get("recipe"), str):
        config.recipe = data["recipe"]
    return cfgmod.apply_dict(config, data, source=source)


def _refuse_running(run_dir: Path) -> None:
    from ptviz.engine.storage.rundir import holder_pid

    pid = holder_pid(run_dir)
    if pid is not None:
        raise UserError(f"{run_dir} is still running (pid {pid}); attach to it with: ptviz-tui attach {run_dir}")


def _check_work_left(run_dir: Path, config: cfgmod.RunConfig, state: dict) -> None:
    step, epoch, max_steps = int(state["step"]), int(state["epoch"]), config.train.max_steps
    if max_steps and step >= max_steps:
        raise UserError(f"{run_dir} already reached train.max_steps={max_steps} (step {step}); "
                        f"pass --max-steps N (more than {step}, or 0 for no limit) to train longer")
    if epoch >= config.train.epochs:
        raise UserError(f"{run_dir} already trained all {config.train.epochs} epochs (step {step}); "
                        f"pass --epochs N (more than {epoch}) to train longer")


# ----------------------------------------------------------------------------- attach


def attach(argv: list[str]) -> int:
    """ptviz-tui attach RUN_DIR."""
    parser = argparse.ArgumentParser(
        prog="ptviz-tui attach",
        description="Open the cockpit on a run training in another process (a headless run): its charts from "
                    "the run's log, and pause, resume, stop, checkpoint and learning-rate keys through its "
                    "control socket. Quitting the cockpit leaves the run training.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of the running run")
    args = parser.parse_args(argv)
    run_dir = _run_dir(args.run_dir)
    from ptviz.engine.storage.rundir import holder_pid
    from ptviz.engine.storage.runs import run_info

    if holder_pid(run_dir) is None:
        info = run_info(run_dir)
        more = f" --epochs {info.epochs + 10}" if info.state == "finished" and info.epochs else ""
        raise UserError(f"{run_dir} is not running ({info.state} at step {info.step:,}); "
                        f"continue it with: ptviz-tui resume {run_dir}{more}")
    config = config_of(cfgmod.load_toml(str(run_dir / "config.toml")), source=str(run_dir / "config.toml"))
    from ptviz.engine import trust

    from .entry import run_app

    # The cockpit imports the model only to show it, and asks first when the run folder names user code.
    return run_app(config, attach=run_dir, unconfirmed_code=trust.user_code(config))


# ----------------------------------------------------------------------------- runs


def runs(argv: list[str]) -> int:
    """ptviz-tui runs [DIR] [--list]."""
    parser = argparse.ArgumentParser(
        prog="ptviz-tui runs",
        description="Open the Runs view on the run directories under DIR: compare, overlay, diff, note and fork "
                    "them. With --list, or when stdout is not a terminal, print them with their state instead.")
    parser.add_argument("folder", metavar="DIR", nargs="?", default="runs", help="folder of runs (default: runs)")
    parser.add_argument("--list", action="store_true", help="print the runs and their state (forks under their parent)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError(f"{folder.resolve()}: no such folder (pass the folder of runs, e.g. ptviz-tui runs path/to/runs)")
    if not args.list and sys.stdout.isatty() and sys.stdin.isatty():
        from ptviz.engine.recipes import DEFAULT_RECIPE, recipe

        from .entry import run_app

        config = recipe(DEFAULT_RECIPE)
        config.output.runs_dir = str(folder)
        return run_app(config, tab="runs")
    return list_runs_plain(folder)


def list_runs_plain(folder: Path) -> int:
    """Print the runs under `folder`, one line each, each fork under its parent."""
    from ptviz.engine.storage.catalog import tree_of
    from ptviz.engine.storage.lineage import read_lineage
    from ptviz.engine.storage.runs import list_runs

    found = {r.path: r for r in list_runs(folder)}
    if not found:
        print(f"no runs in {folder}")
        return EXIT_OK
    lineage = {path: read_lineage(path) for path in found}
    rows = [("RUN", "STATE", "STEP", "EPOCH", "BEST TEST ACC", "UPDATED")]
    for path, depth in tree_of({p: Path(li.parent) if li else None for p, li in lineage.items()},
                               key=lambda p: p.name):
        r, li = found[path], lineage[path]
        step = f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step)
        epoch = f"{r.epoch}/{r.epochs}" if r.epochs else str(r.epoch)
        best = f"{r.best_test_accuracy:.2%}" if r.best_test_accuracy is not None else "-"
        state = _shown_state(r)
        name = ("  " * (depth - 1) + "└ " if depth else "") + r.path.name
        if li is not None and depth == 0:
            name += f" (fork of {li.parent_name})"
        elif li is not None:
            name += f" @ step {li.step:,}"
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.updated)) if r.updated else "-"
        rows.append((name, state, step, epoch, best, updated))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in found.values():
        if r.problem:
            print(f"{r.path.name}: damaged: {r.problem}")
    return EXIT_OK


def _shown_state(info) -> str:
    """A run's state for the listing: with its pid, and its owner when that is another user."""
    if info.state == "unknown":
        return "unknown (no permission to read its lock)"
    notes = [f"pid {info.pid}{_other_owner(info.path)}"] if info.pid else []
    if info.world_size > 1:
        notes.append(f"{info.world_size} ranks")
    if info.restarts:
        notes.append(f"{info.restarts} restart{'s' if info.restarts > 1 else ''}")
    return f"{info.state} ({', '.join(notes)})" if notes else info.state


def _other_owner(path: Path) -> str:
    """', user NAME' when `path` belongs to another user, else ''."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return ""
    if not hasattr(os, "getuid") or uid == os.getuid():
        return ""
    try:
        import pwd

        return f", user {pwd.getpwuid(uid).pw_name}"
    except (ImportError, KeyError):
        return f", user {uid}"


# ----------------------------------------------------------------------------- fork


def fork(argv: list[str]) -> int:
    """ptviz-tui fork RUN_DIR [--checkpoint NAME] [--headless] [flags]."""
    parser = argparse.ArgumentParser(
        prog="ptviz-tui fork",
        description="Start a new run from a checkpoint of RUN_DIR with some settings changed: it takes that "
                    "checkpoint's weights, optimizer state and position (its first step is the checkpoint's "
                    "step + 1) and records its parent. Give the settings to change as flags, e.g. --lr 0.01.",
        epilog="The parent is left untouched; the new run goes beside it (or under --runs-dir). A model given "
               "as file.py:factory must be named again with --model, since ptviz never runs code that only "
               "a run folder names.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run to branch from")
    parser.add_argument("--checkpoint", metavar="NAME", help="best, last, or a file in RUN_DIR/checkpoints such "
                        "as epoch-0003.pt (default: the newest)")
    parser.add_argument("--headless", action="store_true", help="train the fork without the cockpit")
    add_field_flags(parser)
    args = parser.parse_args(argv)
    run_dir = _run_dir(args.run_dir)
    from ptviz.engine.fork import fork_config, load_parent, plan_fork

    state, path = load_parent(run_dir, args.checkpoint)
    named = named_fields(args)
    config = fork_config(state, source=str(path))  # at the checkpoint's lr unless --lr says otherwise
    if "output.runs_dir" not in named:
        config.output.runs_dir = str(run_dir.parent)  # beside its parent, wherever the parent was started from
    plan = plan_fork(run_dir, state, path, apply_args(config, args), named_by_user=named)
    changes = ", ".join(f"{p} {cfgmod.format_value(a)} → {cfgmod.format_value(b)}"
                        for p, (a, b) in plan.lineage.changed.items()) or "no settings changed"
    print(f"forking {run_dir} from {path.name} (step {plan.lineage.step:,}, epoch {plan.lineage.epoch}): {changes}")
    if args.headless:
        from .headless import run_headless

        return run_headless(plan.config, resume=plan.state, parent=plan.lineage)
    from .entry import run_app

    return run_app(plan.config, resume=plan.state, parent=plan.lineage)


def named_fields(args: argparse.Namespace) -> set[str]:
    """The field paths given on the command line (flags and --set)."""
    named = {k[len("field:"):] for k, v in vars(args).items() if k.startswith("field:") and v is not None}
    named.update(item.partition("=")[0].strip() for item in args.set if "=" in item)
    return named


# ----------------------------------------------------------------------------- send

SEND_COMMANDS = ("status", "pause", "resume", "stop", "checkpoint", "evaluate", "set-lr", "scale-lr")


def send(argv: list[str]) -> int:
    """ptviz-tui send RUN_DIR COMMAND [VALUE]."""
    from ptviz.engine.remote import COMMAND_SECONDS, MAX_WAIT_SECONDS, CommandPending, RemoteRun

    parser = argparse.ArgumentParser(
        prog="ptviz-tui send",
        description="Send one command to a running run; once it has taken effect, print the run's status as "
                    "JSON, its \"result\" the command's outcome (evaluate: loss and accuracy; checkpoint: the "
                    "path; stop: the final state, step and checkpoint; the others: the step and value).",
        epilog="Exit codes: 0 done, 1 not taken effect within --timeout (it stays queued), 2 refused or no run "
               "listening.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("command", choices=SEND_COMMANDS)
    parser.add_argument("value", nargs="?", type=float, help="the rate for set-lr, the factor for scale-lr")
    parser.add_argument("--timeout", type=float, default=COMMAND_SECONDS, metavar="SECONDS",
                        help=f"how long to wait for the command to take effect (default {COMMAND_SECONDS:g})")
    args = parser.parse_args(argv)
    if not 0 < args.timeout <= MAX_WAIT_SECONDS:
        raise UserError(f"--timeout must be more than 0 and at most {MAX_WAIT_SECONDS:g} seconds, got {args.timeout:g}")
    request: dict = {"cmd": args.command.replace("-", "_")}
    if args.command in ("set-lr", "scale-lr"):
        if args.value is None:
            raise UserError(f"{args.command} needs a value, e.g. ptviz-tui send RUN_DIR {args.command} 0.5")
        request["lr" if args.command == "set-lr" else "factor"] = args.value
    with RemoteRun(_run_dir(args.run_dir)) as run:
        try:
            status = run.status() if args.command == "status" else run.send(request, timeout=args.timeout)
        except CommandPending as exc:
            return _fail(str(exc), EXIT_FAILED)
    print(json.dumps(status))
    return EXIT_OK


# ----------------------------------------------------------------------------- lr-find


def lr_find(argv: list[str]) -> int:
    """ptviz-tui lr-find [--recipe R] [--config FILE] [flags] [--min-lr A] [--max-lr B] [--num-steps N]."""
    from .cli import add_config_flags, config_from_args

    parser = argparse.ArgumentParser(
        prog="ptviz-tui lr-find",
        description="Find a learning rate: train a copy of the configured model for a few steps while the rate "
                    "grows exponentially, plot the smoothed loss against it and suggest the rate where the loss "
                    "falls fastest (steepest descent, as Lightning's and fastai's lr_find suggest). Nothing is "
                    "written to disk.",
        epilog="Then train with it: ptviz-tui --lr RATE (or press L in the cockpit to sweep there).")
    parser.add_argument("--min-lr", type=float, default=1e-7, metavar="LR", help="first rate (default 1e-7)")
    parser.add_argument("--max-lr", type=float, default=10.0, metavar="LR", help="last rate (default 10)")
    parser.add_argument("--num-steps", type=int, default=100, metavar="N",
                        help="steps of the sweep, one batch each (default 100); it stops early when the loss runs away")
    add_config_flags(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    from ptviz.engine.lr_find import check_range, describe, find_lr

    if why := check_range(args.min_lr, args.max_lr, args.num_steps):
        raise UserError(f"lr-find: {why}")
    print(f"lr-find: {config.recipe}, learning rate {args.min_lr:g} → {args.max_lr:g} over {args.num_steps} steps "
          "on a copy of the model (nothing is written)", flush=True)
    result = find_lr(config, start=args.min_lr, end=args.max_lr, steps=args.num_steps)
    from .train.lr_chart import chart_text

    width = max(40, min(100, shutil_width()))
    print(chart_text(result, width, 18))
    print(describe(result))
    if result.suggestion is None:
        return EXIT_FAILED
    print(f"train with it: ptviz-tui --recipe {config.recipe} --lr {result.suggestion:.3g}")
    return EXIT_OK


def shutil_width() -> int:
    """The terminal's width in columns (80 when not a terminal)."""
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


COMMANDS: dict[str, Callable[[list[str]], int]] = {"resume": resume, "attach": attach, "runs": runs, "send": send,
                                                   "fork": fork, "lr-find": lr_find}
