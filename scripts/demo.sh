#!/usr/bin/env bash
# The end-to-end demo: keys, a package, the verified store, a signed index, a second machine; then the
# bundled default index (index/, built by forge from experts/): install the tiny base and the five
# example experts offline, and let the router pick the expert that answers a prompt.
# Everything happens under .demo/ (throwaway EXPERTPM_HOMEs and work directory), so it never touches
# ~/.expertpm and can be re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EXPERTPM=${EXPERTPM:-$ROOT/.venv/bin/expertpm}
DEMO=$ROOT/.demo
rm -rf "$DEMO" && mkdir -p "$DEMO/dist"
export EXPERTPM_HOME=$DEMO/home
cd "$DEMO"
step() {  # show the command (arguments with spaces in quotes), then run it
  local shown=""
  for a in "$@"; do if [[ "$a" =~ [[:space:]] ]]; then shown+=" \"$a\""; else shown+=" $a"; fi; done
  printf '\n\033[1m$ expertpm%s\033[0m\n' "$shown"; "$EXPERTPM" "$@"
}

step keys generate --name demo
step new hello-expert
step pack hello-expert -o dist --key demo
step inspect dist/hello-expert-0.1.0.expert
step verify dist/hello-expert-0.1.0.expert
step store add dist/hello-expert-0.1.0.expert
step store list
step export-peft dist/hello-expert-0.1.0.expert peft-adapter
step store fsck

# A signed index: a maintainer creates it and delegates names to the publisher, who publishes;
# a second machine (another EXPERTPM_HOME) follows it by root fingerprint and installs from it.
step keys generate --name root
printf '\n\033[1m$ expertpm index init registry-index --root-key root --name demo\033[0m\n'
INIT=$("$EXPERTPM" index init registry-index --root-key root --name demo) && echo "$INIT"
FINGERPRINT=$(echo "$INIT" | sed -n 's/^fingerprint: //p')
step index delegate demo --names 'hello-*' --index registry-index
step publish dist/hello-expert-0.1.0.expert --index registry-index --key demo --no-embedding
export EXPERTPM_HOME=$DEMO/second-machine
step index add demo "file://$DEMO/registry-index" --fingerprint "$FINGERPRINT"
step install hello-expert --index demo
step store list

# The bundled index, followed by the root fingerprint pinned in the repository; everything offline.
export EXPERTPM_HOME=$DEMO/bundled
step index add default "$ROOT/index" --fingerprint "$(cat "$ROOT/index/FINGERPRINT")"
step install tiny-qwen3 sql tool-call cypher sentiment ner
step route "Count the students whose city is Lima." --explain
step run --auto --show-route "Count the students whose city is Lima."
echo
echo "demo: done (state in $DEMO)"
