#!/usr/bin/env bash
# The end-to-end demo on the bundled default. Everything happens under .demo/ (a throwaway
# EXPERTPM_HOME and work directory), so it never touches ~/.expertpm and can be re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EXPERTPM=${EXPERTPM:-$ROOT/.venv/bin/expertpm}
DEMO=$ROOT/.demo
rm -rf "$DEMO" && mkdir -p "$DEMO/dist"
export EXPERTPM_HOME=$DEMO/home
cd "$DEMO"
step() { printf '\n\033[1m$ expertpm %s\033[0m\n' "$*"; "$EXPERTPM" "$@"; }

step keys generate --name demo
step new hello-expert
step pack hello-expert -o dist --key demo
step inspect dist/hello-expert-0.1.0.expert
step verify dist/hello-expert-0.1.0.expert
step store add dist/hello-expert-0.1.0.expert
step store list
step export-peft dist/hello-expert-0.1.0.expert peft-adapter
step store fsck

# The bundled default index (index/, signed; its root fingerprint is pinned in index/FINGERPRINT):
# follow it, install the tiny base and the five example experts offline, and let the router pick
# the expert for a prompt.
step index add default "$ROOT/index" --fingerprint "$(cat "$ROOT/index/FINGERPRINT")"
for name in tiny-qwen3 sql tool-call cypher sentiment ner; do step install "$name"; done
step store list
PROMPT=${DEMO_PROMPT:-"How many students come from Lima?"}
step route --base tiny-qwen3 "$PROMPT"
printf '\n\033[1m$ expertpm run --auto --show-route %q\033[0m\n' "$PROMPT"
ANSWER=$("$EXPERTPM" run --auto --show-route --base tiny-qwen3 "$PROMPT" 2> "$DEMO/route.txt")
cat "$DEMO/route.txt"
echo "answer: $ANSWER"
echo
echo "demo: done (state in $DEMO)"
