#!/usr/bin/env bash
# Makes docs/editor/neovim.png: Neovim (in tmux, 120x35) on a copy of examples/start-business
# with onetrip-lsp, after an edit that makes a diagnostic; tmux capture-pane, rendered by
# render.py (needs Pillow and fonts-noto-cjk). Run from the repository root after
# `cargo build -p onetrip-editor-lsp --bin onetrip-lsp`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'tmux kill-session -t onetrip-shot 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$repo/examples/start-business" "$work/start-business"
tmux new-session -d -s onetrip-shot -x 120 -y 35 \
    "cd '$work/start-business' && env TERM=tmux-256color ONETRIP_LSP='$repo/target/debug/onetrip-lsp' ONETRIP_FILE=start_business.flow nvim --clean -u NONE -i NONE -n -c 'luafile $here/screenshot.lua'"
sleep "${SHOT_WAIT:-4}"
tmux capture-pane -t onetrip-shot -e -p > "$work/pane.ansi"
"${PYTHON:-python3}" "$here/render.py" "$work/pane.ansi" "$repo/docs/editor/neovim.png" 120 35
