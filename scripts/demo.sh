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
echo
echo "demo: done (state in $DEMO)"
