"""The `ptviz-tui` command: flags map onto configuration fields; torch and textual load only when needed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ptviz.engine import config as cfgmod
from ptviz.engine.errors import ConfigError, FieldError, UserError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DIVERGED = 0, 1, 2, 3
EXIT_SIGNAL_BASE = 128  # stopped by signal N (after saving a checkpoint): exit code 128 + N
SUBCOMMANDS: tuple[str, ...] = ("resume", "attach", "runs", "fork", "send", "lr-find")  # in ptviz.tui.commands

# Flag names that differ from the field name.
FLAG_NAMES = {"model.name": "model"}


def flag_for(path: str) -> str:
    """The command-line flag of a configuration field ('data.batch_size' -> '--batch-size')."""
    return "--" + FLAG_NAMES.get(path, path.split(".", 1)[1]).replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """--recipe, --config, --set and one flag per configuration field."""
    from ptviz.engine.recipes import DEFAULT_RECIPE, RECIPES

    parser.add_argument("--recipe", help=f"preset to start from: {', '.join(RECIPES)} (default {DEFAULT_RECIPE})")
    parser.add_argument("--config", metavar="FILE", help="TOML file whose [data], [model], [optim], [train] and "
                        "[output] tables override the recipe")
    add_field_flags(parser)


def add_field_flags(parser: argparse.ArgumentParser) -> None:
    """--set and one flag per configuration field."""
    parser.add_argument("--set", metavar="SECTION.FIELD=VALUE", action="append", default=[],
                        help="set any field, e.g. --set optim.gamma=0.5 (repeatable)")
    docs = cfgmod.field_docs()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for path in cfgmod.field_paths():
        section = path.split(".")[0]
        group = groups.get(section) or groups.setdefault(section, parser.add_argument_group(f"[{section}]"))
        kind = cfgmod.field_type(path)
        dest = "field:" + path
        if kind == "bool":
            group.add_argument(flag_for(path), dest=dest, action=argparse.BooleanOptionalAction, default=None,
                               help=docs.get(path, ""))
        else:
            group.add_argument(flag_for(path), dest=dest, metavar=kind.upper(), default=None,
                               help=docs.get(path, "").replace("%", "%%"))


def build_parser() -> argparse.ArgumentParser:
    """The parser of the main command (open the cockpit, or train headless)."""
    parser = argparse.ArgumentParser(
        prog="ptviz-tui",
        description="Train PyTorch models from a terminal cockpit (or headless).",
        epilog="Examples: ptviz-tui  |  ptviz-tui --headless --epochs 3  |  "
               "ptviz-tui --recipe mnist-mlp --root ~/data --download  |  ptviz-tui --headless --nproc gpu.  "
               "Other commands: ptviz-tui resume RUN_DIR | attach RUN_DIR | runs [DIR] | fork RUN_DIR | "
               "send RUN_DIR COMMAND | lr-find (each takes --help).",
    )
    parser.add_argument("--headless", action="store_true", help="train without the cockpit, printing progress")
    from .launch import add_launch_flags

    add_launch_flags(parser)
    add_config_flags(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> cfgmod.RunConfig:
    """Recipe, then the TOML file, then flags; ConfigError names every bad field."""
    from ptviz.engine.recipes import DEFAULT_RECIPE, recipe

    if args.config is not None and not args.config.strip():
        raise ConfigError([FieldError("--config", args.config, "needs the path of a TOML file")])
    file_data = cfgmod.load_toml(args.config) if args.config is not None else {}
    name = args.recipe or file_data.get("recipe") or DEFAULT_RECIPE
    if not isinstance(name, str):
        raise ConfigError([FieldError("recipe", name, "must be text")])
    config = recipe(name)
    if file_data:
        cfgmod.apply_dict(config, file_data, source=args.config)
    return apply_args(config, args)


def apply_args(config: cfgmod.RunConfig, args: argparse.Namespace) -> cfgmod.RunConfig:
    """Apply --set and the field flags to `config`, then validate; ConfigError names every bad field."""
    errors: list[FieldError] = []
    values = {k[len("field:"):]: v for k, v in vars(args).items() if k.startswith("field:") and v is not None}
    given = {path: f"flag {flag_for(path)}" for path in values}
    for item in args.set:
        path, sep, text = item.partition("=")
        if not sep or path.strip() not in cfgmod.field_paths():
            errors.append(FieldError("--set", item, "must be SECTION.FIELD=VALUE with a known field, "
                                     "e.g. optim.lr=0.1"))
            continue
        values[path.strip()] = text
        given[path.strip()] = f"--set {path.strip()}"
    for path, raw in values.items():
        if isinstance(raw, bool):
            cfgmod.set_value(config, path, raw)
            continue
        try:
            cfgmod.set_value(config, path, cfgmod.parse_text(path, raw))
        except ValueError as exc:
            errors.append(FieldError(path, raw, f"{exc} ({given[path]})"))
    unparsed = {e.path for e in errors}
    errors += [_naming_origin(e, given) for e in cfgmod.validate(config) if e.path not in unparsed]
    if errors:
        raise ConfigError(errors)
    return config


def _naming_origin(error: FieldError, given: dict[str, str]) -> FieldError:
    """A validation error of a field the command line set, ending like a parse error: '(flag --lr)'."""
    origin = given.get(error.path)
    if origin is None:
        return error
    return FieldError(error.path, error.value, f"{error.reason} ({origin})")


def _fail(message: str, code: int) -> int:
    print(f"ptviz-tui: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        from . import commands

        return commands.main(argv)
    args = build_parser().parse_args(argv)
    from .launch import options_from_args

    try:
        config = config_from_args(args)
        launch = options_from_args(args)
    except ConfigError as exc:
        for error in exc.errors:
            _fail(str(error), EXIT_CONFIG)
        return EXIT_CONFIG
    if launch.wanted:
        return _launched(launch, argv, args.headless, config)
    if args.headless:
        from .headless import run_headless

        return run_headless(config)
    from .entry import run_app

    return run_app(config)


def _launched(launch, argv: list[str], headless: bool, config: cfgmod.RunConfig) -> int:
    """Train under torchrun: headless in this terminal, or the cockpit attached to the workers it starts."""
    from ptviz.engine.distributed.env import from_environ

    if from_environ() is not None:
        return _fail("this process was started by a launcher already (RANK and WORLD_SIZE are set): drop --nproc "
                     "and the other launch flags", EXIT_CONFIG)
    from .launch import launch as run_launched, without_launch_flags

    if headless:
        return run_launched(launch, without_launch_flags(argv))
    from .launch import in_cockpit

    return in_cockpit(config, [*argv, "--headless"])


def report(exc: BaseException) -> int:
    """Print a failure as one line (the traceback only with PTVIZ_DEBUG=1) and return the exit code."""
    if os.environ.get("PTVIZ_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, UserError):
        return _fail(str(exc), EXIT_CONFIG)
    return _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
