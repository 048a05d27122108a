#!/usr/bin/env bash
# Builds, tests and packages the onetrip flow VS Code extension from a clean checkout:
#   npm ci → tsc → TextMate grammar tests → vsce package → check the .vsix.
# Needs Node 20+ and npm (and the npm registry, for `npm ci`). Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

started=$SECONDS
step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nci.sh: FAILED: %s\n' "$*" >&2; exit 1; }
trap 'status=$?; [ $status -eq 0 ] || printf "\nci.sh: FAILED (exit %s) after %ss\n" "$status" "$((SECONDS - started))" >&2' EXIT

command -v node >/dev/null || fail "node is not installed (Node 20 or later is needed)"
command -v npm >/dev/null || fail "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node $(node --version) is too old: Node 20 or later is needed"
printf 'onetrip-flow extension CI in %s (node %s, npm %s)\n' "$PWD" "$(node --version)" "$(npm --version)"

step "Installing dependencies from package-lock.json (npm ci)"
npm ci --no-audit --no-fund

step "Compiling the extension (npm run compile)"
npm run compile
[ -s out/extension.js ] || fail "out/extension.js was not produced"

step "Testing the TextMate grammar (npm run test:grammar)"
npm run test:grammar

step "Packaging the extension (vsce package)"
rm -f onetrip-flow.vsix
npx --no-install vsce package --out onetrip-flow.vsix

step "Checking onetrip-flow.vsix"
[ -s onetrip-flow.vsix ] || fail "onetrip-flow.vsix is missing or empty"
printf 'onetrip-flow.vsix: %s bytes\n' "$(wc -c < onetrip-flow.vsix | tr -d ' ')"
if command -v unzip >/dev/null; then
  unzip -l onetrip-flow.vsix
  for entry in extension/package.json extension/out/extension.js \
    extension/syntaxes/onetrip-flow.tmLanguage.json extension/snippets/onetrip-flow.json \
    extension/language-configuration.json extension/node_modules/vscode-languageclient/package.json; do
    unzip -l onetrip-flow.vsix "$entry" >/dev/null || fail "$entry is missing from the .vsix"
  done
  echo "The .vsix holds the extension, its grammar, snippets and vscode-languageclient."
else
  echo "unzip not found: not listing the .vsix contents"
fi

printf '\nci.sh: OK in %ss: %s/onetrip-flow.vsix\n' "$((SECONDS - started))" "$PWD"
