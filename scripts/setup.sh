#!/usr/bin/env bash
# Installs everything refine-assets needs on a fresh Debian (bookworm) machine: system packages,
# uv, and the locked Python environment (.venv). Idempotent; safe to re-run.
#   REFINE_ASSETS_SKIP_APT=1  skip apt-get (packages already there / not root)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# System packages:
#  - dpkg/apt: the demo data is taken from Debian packages (apt-get download + dpkg-deb -x);
#  - salmon, sra-toolkit (fastq-dump, latf-load, kar), rsem + samtools: the RNA-seq pipeline;
#  - R with limma, preprocessCore, tximport, affyio (+ jsonlite): reference implementations that the
#    tests and benchmarks/compare_r.py compare our native numpy methods against (never used by the
#    pipeline itself);
#  - postgresql: Dagster's instance storage in the deployment test (a throw-away cluster, never the
#    system service); chromium: the browser test of the UI (driven by the playwright package).
APT_PACKAGES=(ca-certificates dpkg apt
  salmon sra-toolkit rsem samtools
  r-base-core r-bioc-limma r-bioc-preprocesscore r-bioc-tximport r-bioc-affyio r-cran-jsonlite
  r-cran-readr r-cran-dplyr r-cran-tibble
  postgresql chromium)
if [ -z "${REFINE_ASSETS_SKIP_APT:-}" ] && command -v apt-get >/dev/null; then
  echo "== apt-get install ${APT_PACKAGES[*]}"
  $SUDO apt-get update -qq
  if ! command -v python3 >/dev/null; then APT_PACKAGES+=(python3 python3-venv python3-pip); fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  echo "== installing uv"
  python3 -m pip install -q uv 2>/dev/null || python3 -m pip install -q --break-system-packages uv
  export PATH="$HOME/.local/bin:$PATH"
fi

echo "== uv sync (locked)"
# --compile-bytecode: write the .pyc files once here; without them every process (each `dagster dev`
# process, every CLI call) compiles dagster & co. from source again: seconds per start.
uv sync --frozen --extra dev --compile-bytecode
