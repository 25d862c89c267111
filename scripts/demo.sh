#!/usr/bin/env bash
# README command 1: install everything, then run the main job on real demo data (no network needed
# beyond the package registries): Debian packages for GSE781 etc., plus ../shared/data if present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
uv run refine-assets demo "$@"
