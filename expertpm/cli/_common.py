"""Small helpers shared by command modules (standard library only at import time)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def home_of(args: argparse.Namespace):
    from .._home import Home

    return Home.resolve(getattr(args, "home", None))


def add_command(sub, common, name: str, help: str, run, **kw) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, parents=[common], **kw)
    parser.set_defaults(handler=run)
    return parser


def add_group(sub, common, name: str, help: str):
    """A command group such as `keys` or `store`; returns the group's subparsers."""
    parser = sub.add_parser(name, help=help, description=help, parents=[common])
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    return parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")


def out(text: str = "") -> None:
    print(text)


def err(text: str) -> None:
    print(text, file=sys.stderr)
