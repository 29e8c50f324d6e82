#!/usr/bin/env bash
# Fails when a committed generated codec in src/wire/ is stale: every
# src/wire/*.proto is regenerated with protons into a temporary directory and
# compared with the .ts file beside it. Fix a failure with `npm run proto`
# (or `npx protons src/wire/<name>.proto`) and commit the result.
set -euo pipefail

cd "$(dirname "$0")/.."
proto_dir=src/wire

shopt -s nullglob
protos=("$proto_dir"/*.proto)
if [ ${#protos[@]} -eq 0 ]; then
  echo "check-proto: no .proto files in $proto_dir" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! npx --no-install protons --path "$proto_dir" --output "$tmp" "${protos[@]}" >"$tmp/protons.log" 2>&1; then
  echo "check-proto: protons failed:" >&2
  cat "$tmp/protons.log" >&2
  exit 1
fi

stale=0
for proto in "${protos[@]}"; do
  name=$(basename "$proto" .proto)
  committed="$proto_dir/$name.ts"
  generated="$tmp/$name.ts"
  if [ ! -f "$generated" ]; then
    echo "check-proto: protons wrote no $name.ts for $proto" >&2
    stale=1
  elif [ ! -f "$committed" ]; then
    echo "check-proto: $committed is missing; generate it from $proto" >&2
    stale=1
  elif ! diff -u --label "$committed (committed)" --label "$committed (regenerated)" "$committed" "$generated" >&2; then
    echo "check-proto: $committed differs from what protons generates from $proto" >&2
    stale=1
  fi
done

if [ "$stale" -ne 0 ]; then
  echo "check-proto: FAILED: regenerate with 'npm run proto' and commit the generated files" >&2
  exit 1
fi
echo "check-proto: ${#protos[@]} generated codec(s) in $proto_dir are up to date"
