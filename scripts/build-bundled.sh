#!/usr/bin/env bash
# Rebuild the bundled default index from source: the tiny base (experts/base) and the five
# example experts (experts/{sql,tool-call,cypher,sentiment,ner}), each through forge's pipeline
# (documents → chunks → stand-in teacher → records → decontaminated split → train → evaluate →
# build), signed and published into a fresh index that replaces index/.
#
#   bash scripts/build-bundled.sh [--clean]
#
# Keys are made fresh in a temporary home and deleted at the end: no private key is ever written
# into the repository. The new root fingerprint is pinned in index/FINGERPRINT. Forge caches its
# steps in experts/*/.forge/ (ignored by Git), so a second run only redoes what changed;
# --clean deletes those caches first and rebuilds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EXPERTPM=${EXPERTPM:-$ROOT/.venv/bin/expertpm}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
EXPERTS=(sql tool-call cypher sentiment ner)
TEACHER_PORT=8765  # the endpoint every recipe names
EXPIRES_DAYS=3650  # the bundled snapshot must stay valid for clones made long after the build

if [[ "${1:-}" == "--clean" ]]; then
  for e in base "${EXPERTS[@]}"; do rm -rf "experts/$e/.forge"; done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/expertpm-bundled.XXXXXX")
TEACHER_PID=
cleanup() {
  [[ -n "$TEACHER_PID" ]] && kill "$TEACHER_PID" 2>/dev/null || true
  rm -rf "$WORK"  # the keys live here: they never outlive the build
}
trap cleanup EXIT
export EXPERTPM_HOME=$WORK/home
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)

say "fresh keys (root of the index, and the publisher of the bundled packages)"
"$EXPERTPM" keys generate --name root
"$EXPERTPM" keys generate --name bundled
"$EXPERTPM" index init "$WORK/index" --root-key root --name default --expires "$EXPIRES_DAYS" | tee "$WORK/init.txt"
"$EXPERTPM" index delegate bundled --index "$WORK/index" --names tiny-qwen3 "${EXPERTS[@]}" --label "expertpm bundled"

say "stand-in teacher on 127.0.0.1:$TEACHER_PORT"
if "$PYTHON" - "$TEACHER_PORT" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/models", timeout=2) as r:
        sys.exit(0 if "expertpm-stand-in" in r.read().decode() else 1)
except OSError:
    sys.exit(1)
EOF
then
  echo "reusing the stand-in teacher already listening there"
else
  "$EXPERTPM" forge teacher-serve --port "$TEACHER_PORT" > "$WORK/teacher.log" 2>&1 &
  TEACHER_PID=$!
  for _ in $(seq 50); do grep -q listening "$WORK/teacher.log" 2>/dev/null && break; sleep 0.2; done
  cat "$WORK/teacher.log"
fi

say "base: tiny-qwen3 (tokenizer, init, continued pre-training)"
"$EXPERTPM" forge publish experts/base --index "$WORK/index" --key bundled
"$EXPERTPM" store add experts/base/.forge/dist/tiny-qwen3-*.expert  # the experts' recipes train on it

for expert in "${EXPERTS[@]}"; do
  say "expert: $expert"
  "$EXPERTPM" forge publish "experts/$expert" --index "$WORK/index" --key bundled
done

say "export the index into index/"
rm -rf "$WORK/export"
"$EXPERTPM" index export --index "$WORK/index" "$WORK/export"
grep -Eo '[0-9a-f]{64}' "$WORK/init.txt" | head -1 > "$WORK/export/FINGERPRINT"
rm -rf index.old
[[ -d index ]] && mv index index.old
mv "$WORK/export" index
rm -rf index.old

say "check: the new index verifies and installs into a fresh home"
export EXPERTPM_HOME=$WORK/check
"$EXPERTPM" index add default "$ROOT/index" --fingerprint "$(cat index/FINGERPRINT)"
for name in tiny-qwen3 "${EXPERTS[@]}"; do "$EXPERTPM" install "$name"; done
"$EXPERTPM" store list
echo
"$PYTHON" scripts/bundled_scores.py "$EXPERTPM_HOME"
echo
echo "bundled index rebuilt in $(( $(date +%s) - started ))s; root fingerprint $(cat index/FINGERPRINT)"
