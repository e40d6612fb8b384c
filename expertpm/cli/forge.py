"""`expertpm forge run | status | <step> | teacher-serve`: forge's pipeline on an expert source."""

from __future__ import annotations

from ._common import add_command, add_group, err, home_of, out, print_json

ORDER = 60
# the pipeline's step names (expertpm_forge.recipe.STEP_ORDER), repeated so --help imports nothing
STEPS = ("clean", "chunk", "dedupe", "synthesize", "format", "split", "train", "evaluate", "build")


def register(sub, common) -> None:
    group = add_group(sub, common, "forge", "build experts from documents: data, teacher, training, evaluation")
    p = add_command(group, common, "run", "run the recipe's steps; each re-runs only when its inputs changed",
                    run_pipeline)
    _expert_arg(p)
    p.add_argument("--only", metavar="STEP", choices=STEPS,
                   help="run just this step, on the outputs its upstream steps already have")
    p.add_argument("--force", action="store_true", help="re-run steps even when their inputs are unchanged")
    p.add_argument("--json", action="store_true", help="print the step outcomes as JSON")
    p = add_command(group, common, "status", "show which steps are up to date", run_status)
    _expert_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    for step in STEPS:
        p = add_command(group, common, step, f"run the pipeline up to and including {step}", run_step)
        _expert_arg(p)
        p.add_argument("--force", action="store_true", help=f"re-run {step} even when its inputs are unchanged")
        p.add_argument("--json", action="store_true", help="print the step outcomes as JSON")
        p.set_defaults(step=step)
        if step == "build":
            _package_args(p, "write <name>-<version>.expert into DIR (default: the current directory)")
            p.set_defaults(handler=run_build)
    p = add_command(group, common, "publish", "build (if needed) and publish an expert to an index; refused when "
                    "its evaluation does not beat the base", run_publish)
    p.add_argument("expert", help="an expert source directory (built first), or a .expert package")
    p.add_argument("--index", required=True, metavar="DIR_OR_URL", help="the index directory or file:// URL")
    p.add_argument("--force", action="store_true", help="publish even if the expert does not beat its base")
    _package_args(p, None)
    p = add_command(group, common, "teacher-serve",
                    "serve the stand-in teacher (OpenAI-compatible, rule-based) on 127.0.0.1", run_teacher_serve)
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    p.add_argument("--verbose", action="store_true", help="log every request")


def _expert_arg(p) -> None:
    p.add_argument("expert", help="expert source directory holding forge.toml (or the forge.toml itself)")


def _package_args(p, out_help: str | None) -> None:
    p.add_argument("--key", default="default", help="the signing key in your keyring (default: default)")
    p.add_argument("--passphrase-env", metavar="VAR", help="passphrase of an encrypted key from variable VAR")
    if out_help:
        p.add_argument("-o", "--out", metavar="DIR", default=".", help=out_help)


def _report(outcomes, as_json: bool) -> int:
    if as_json:
        print_json([{"step": o.step, "status": o.status, "seconds": round(o.seconds, 3), "summary": o.summary,
                     "inputs_sha256": o.inputs_sha256} for o in outcomes])
    else:
        ran = sum(o.status == "ran" for o in outcomes)
        out(f"{len(outcomes)} step(s): {ran} ran, {len(outcomes) - ran} cached")
    return 0


def run_pipeline(args) -> int:
    from expertpm_forge._pipeline_report import console_reporter
    from expertpm_forge.pipeline import run_pipeline as run
    from expertpm_forge.recipe import load_recipe

    recipe = load_recipe(args.expert)
    outcomes = run(recipe, only=args.only, force=args.force, reporter=console_reporter())
    return _report(outcomes, args.json)


def run_step(args) -> int:
    from expertpm_forge._pipeline_report import console_reporter
    from expertpm_forge.pipeline import run_pipeline as run
    from expertpm_forge.recipe import load_recipe

    recipe = load_recipe(args.expert)
    outcomes = run(recipe, until=args.step, force={args.step} if args.force else False,
                   reporter=console_reporter())
    return _report(outcomes, args.json)


def run_build(args) -> int:
    """`forge build`: the pipeline up to `build`, then sign and pack the package."""
    from expertpm._keys import Keyring, passphrase_from_env
    from expertpm_forge._pipeline_report import console_reporter
    from expertpm_forge.build import pack_built
    from expertpm_forge.pipeline import run_pipeline as run
    from expertpm_forge.recipe import load_recipe

    key = Keyring(home_of(args)).load(args.key, passphrase_from_env(args.passphrase_env))
    recipe = load_recipe(args.expert)
    outcomes = run(recipe, until="build", force={"build"} if args.force else False, reporter=console_reporter())
    packed = pack_built(recipe, key, args.out)
    if args.json:
        print_json({"package": str(packed.path), "size": packed.size, "steps": [
            {"step": o.step, "status": o.status, "seconds": round(o.seconds, 3), "summary": o.summary,
             "inputs_sha256": o.inputs_sha256} for o in outcomes]})
    else:
        _report(outcomes, False)
        out(f"built {packed.path} ({packed.size} bytes)")
    return 0


def run_publish(args) -> int:
    from expertpm._keys import Keyring, passphrase_from_env
    from expertpm_forge._pipeline_report import console_reporter
    from expertpm_forge.publish import publish_built

    key = Keyring(home_of(args)).load(args.key, passphrase_from_env(args.passphrase_env))
    result = publish_built(args.index, args.expert, key, force=args.force, reporter=console_reporter())
    out(f"published {result.entry.id} (sha256 {result.entry.sha256[:16]}…, snapshot {result.snapshot_version})")
    return 0


def run_status(args) -> int:
    from expertpm_forge.pipeline import plan
    from expertpm_forge.recipe import load_recipe

    states = plan(load_recipe(args.expert))
    if args.json:
        print_json([{"step": s.step, "state": s.state, "reason": s.reason} for s in states])
        return 0
    for s in states:
        out(f"{s.step:<11} {s.state:<11} {s.reason}".rstrip())
    return 0


def run_teacher_serve(args) -> int:
    from expertpm_forge.teacher.server import serve

    def ready(endpoint: str) -> None:
        out(f"stand-in teacher listening on {endpoint} (Ctrl-C to stop)")
        import sys

        sys.stdout.flush()

    try:
        serve(args.port, verbose=args.verbose, ready=ready)
    except OSError as exc:
        err(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror} — pick another --port")
        return 1
    return 0
