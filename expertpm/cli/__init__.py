"""The `expertpm` command line.

Each module in this package is one command (or one command group). A command module defines
``register(subparsers, common)`` which adds its parser(s) and sets ``handler=run``; ``run(args)``
parses nothing more and calls one plain function elsewhere in expertpm. Command modules import
only the standard library at module level so that `expertpm --help` stays fast; the work they
call is imported inside ``run``.

A command line is first parsed with only the module named like its command (`sync` → sync.py,
`export-peft` → export_peft.py, `import` → import_.py) and falls back to every module's parser
when that module does not accept it, so errors and help read the same; a command registered in
a module of another name (`unyank`, in yank.py) is simply read by the full parser.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import os
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
    import pkgutil

    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return _parser_of(modules)


def _parser_of(modules, parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser):
    common = _common_options()
    parser = parser_class(
        prog="expertpm",
        description="Package manager, trainer and runtime for small language-model experts.",
        parents=[common],
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.__name__)):
        module.register(sub, common)
    return parser


class _NotParsed(Exception):
    pass


class _QuietParser(argparse.ArgumentParser):
    """Raises instead of printing an error, so that the full parser can say it instead."""

    def error(self, message):
        raise _NotParsed(message)


def _command_word(argv: list[str]) -> str | None:
    """The command in `argv`, when only `--home` comes before it (anything else: None)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--home":
            i += 2
        elif word.startswith("--home="):
            i += 1
        else:
            return None if word.startswith("-") else word
    return None


def _parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser | None, argparse.Namespace]:
    """Parse with only the module named like the command when that module accepts `argv` (building
    every command's parser costs ~15 ms); otherwise, and for every error and top-level help, with
    the full parser, so messages and help are the same either way."""
    words = sys.argv[1:] if argv is None else argv
    command = _command_word(words)
    if command is not None:
        module_name = command.replace("-", "_")
        for name in (module_name, module_name + "_"):  # `import` lives in import_.py
            if not name.isidentifier() or name.startswith("_"):
                continue
            if importlib.util.find_spec(f"{__name__}.{name}") is None:
                continue
            module = importlib.import_module(f"{__name__}.{name}")
            if not hasattr(module, "register"):
                continue
            try:
                args = _parser_of([module], _QuietParser).parse_args(words)
            except _NotParsed:
                break
            if getattr(args, "handler", None) is not None:
                return None, args
            break
    parser = build_parser()
    return parser, parser.parse_args(words)


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
    parser, args = _parse(argv)
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
