"""The `expertpm` command line.

Each module in this package is one command (or one command group). A command module defines
``register(subparsers, common)`` which adds its parser(s) and sets ``handler=run``; ``run(args)``
parses nothing more and calls one plain function elsewhere in expertpm. Command modules import
only the standard library at module level so that `expertpm --help` stays fast; the work they
call is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import sys

from .._errors import ExpertpmError, UserError

__all__ = ["main", "build_parser"]


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        help="expertpm state directory (default: $EXPERTPM_HOME or ~/.expertpm)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="expertpm",
        description="Package manager, trainer and runtime for small language-model experts.",
        parents=[common],
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.__name__)):
        module.register(sub, common)
    return parser


class _VersionAction(argparse.Action):
    """Looks the version up only when asked (importlib.metadata costs start-up time)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"expertpm {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("expertpm")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status is returned (argparse's own exits raise SystemExit).

    Called without `argv` it is the program (`expertpm`, `python -m expertpm`), and the process
    ends right after it returns: the objects left are then moved out of the garbage collector's
    sight (`gc.freeze`) so that the interpreter's final collection does not walk every module
    imported (~60 ms for a sync). Nothing depends on that collection: files, locks and temporary
    directories are closed by context managers (or weakref finalizers, which run at exit anyway),
    and objects that are not in a cycle are still freed by reference counting. A caller passing
    `argv` (tests, embedding) keeps its collector as it was.
    """
    try:
        return _run(argv)
    finally:
        if argv is None:
            gc.freeze()


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if not (argv if argv is not None else sys.argv[1:]) else 2
    try:
        result = handler(args)
        return int(result or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ExpertpmError as exc:
        print(f"internal error: {exc}", file=sys.stderr)
        if os.environ.get("EXPERTPM_DEBUG"):
            raise
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get("EXPERTPM_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} "
            "(this is a bug; set EXPERTPM_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
