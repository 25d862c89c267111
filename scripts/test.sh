#!/usr/bin/env bash
# README command 2: install everything, then run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
uv run ruff check .
uv run pytest "$@"
