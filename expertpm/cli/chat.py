"""`expertpm chat`: an interactive conversation on stdin.

Commands: `/experts a,b[:w]` compose experts, `/auto` let the router pick per message, `/base`
the base alone, `/reset` forget the conversation, `/quit` (or end of input) leave.
"""

from __future__ import annotations

import sys

from ._common import add_command, err
from .run import add_engine_options, add_sampling_options, experts_from_args, open_runtime, sampling_options

ORDER = 61
HELP = "commands: /experts a,b[:weight]  /auto  /base  /reset  /quit"


def register(sub, common) -> None:
    p = add_command(sub, common, "chat", "chat with the base and installed experts on stdin", run)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--experts", metavar="A,B[:WEIGHT]", help="start with these experts composed")
    group.add_argument("--auto", action="store_true", help="start with the router picking experts")
    add_engine_options(p)
    add_sampling_options(p)


def _lines(interactive: bool):
    while True:
        try:
            line = input("> ") if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and not line:
            return
        yield line.rstrip("\n")


def run(args) -> int:
    from expertpm._errors import UserError
    from expertpm_runtime.catalog import parse_composition

    runtime = open_runtime(args)
    experts, history = experts_from_args(args), []
    interactive = sys.stdin.isatty()
    names = ", ".join(e.name for e in runtime.catalog.compatible()) or "none"
    err(f"base {runtime.catalog.base.name}; experts: {names}")
    err(HELP)
    try:
        for line in _lines(interactive):
            text = line.strip()
            if not text:
                continue
            try:
                if text in ("/quit", "/exit"):
                    break
                if text == "/auto":
                    experts = "auto"
                    err("the router picks experts for each message")
                elif text == "/base":
                    experts = None
                    err("the base answers alone")
                elif text == "/reset":
                    history.clear()
                    err("conversation cleared")
                elif text.startswith("/experts"):
                    spec = text[len("/experts"):].strip()
                    runtime.catalog.resolve(parse_composition(spec))  # refuse bad names now
                    experts = spec
                    err(f"experts: {spec}")
                elif text.startswith("/"):
                    err(f"unknown command {text.split()[0]}; {HELP}")
                else:
                    history.append({"role": "user", "content": text})
                    try:
                        prepared = runtime.prepare(messages=history, experts=experts, **sampling_options(args))
                    except UserError:
                        history.pop()
                        raise
                    if prepared.route is not None:
                        err(f"[{' + '.join(prepared.expert_names) or 'base'}]")
                    pieces = []
                    for piece in runtime.stream_prepared(prepared):
                        pieces.append(piece)
                        sys.stdout.write(piece)
                        sys.stdout.flush()
                    sys.stdout.write("\n")
                    sys.stdout.flush()
                    history.append({"role": "assistant", "content": "".join(pieces)})
            except UserError as exc:
                err(f"error: {exc}")
    finally:
        runtime.close()
    return 0
