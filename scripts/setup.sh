#!/usr/bin/env bash
# Idempotent set-up: a project-local virtual environment with the pinned CPU torch and every dependency.
# Re-running is cheap: pip runs again only when pyproject.toml or the constraints file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VIDEORFT_VENV:-.venv}"
CONSTRAINTS="${VIDEORFT_CONSTRAINTS:-constraints/cpu.txt}"

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"videorft needs Python >= 3.11, found {sys.version.split()[0]}: set PYTHON=/path/to/python3.11")
PY

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here). As root with apt,
# install it once (with docker-compose, whose `config` checks the compose file); elsewhere the README says how, and those tests skip (CI=true: fail) without it.
if [ ! -x /usr/bin/chromium ] && [ -z "${VIDEORFT_SKIP_BROWSER:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian's chromium for the browser tests (VIDEORFT_SKIP_BROWSER=1 skips this)"
  (apt-get install -y --no-install-recommends chromium docker-compose >/dev/null 2>&1 \
    || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium docker-compose >/dev/null 2>&1)) \
    || echo "setup: could not install chromium; the browser tests will skip"
fi

# PyPI's torchvision is a CUDA build that cannot load its ops next to the CPU torch pinned here: where plain
# `import torchvision` fails, install videorft/compat.py's hook (its docstring says how it works) where every
# interpreter of the venv loads it, so `accelerate launch` and anything else that imports torchvision first works too.
torchvision_hook() {
  local site
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if "$VENV/bin/python" -c "import torchvision" 2>/dev/null && [ ! -f "$site/videorft_torchvision_cpu.pth" ]; then
    return 0  # a matching torchvision (or the hook already there): nothing to do
  fi
  cp videorft/compat.py "$site/videorft_torchvision_cpu.py"  # a copy: the venv must not depend on where the repo is
  echo "import videorft_torchvision_cpu; videorft_torchvision_cpu.make_torchvision_importable()" \
    > "$site/videorft_torchvision_cpu.pth"
  if ! "$VENV/bin/python" -c "import torchvision" 2>/dev/null; then
    echo "setup: torchvision does not import even with the CPU hook; see README 'GPU install'" >&2
    return 1
  fi
}

stamp="$VENV/.videorft-setup"
want="$(cat pyproject.toml "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import dagster_project, torch" 2>/dev/null; then
  torchvision_hook
  echo "setup: $VENV is up to date"
  exit 0
fi

echo "setup: installing (first time about 3 minutes; torch pinned by $CONSTRAINTS)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
# torch first and alone, so no other package's loose "torch" requirement can pull a CUDA build.
"$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" "$(grep -E '^torch==' "$CONSTRAINTS")"
"$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" -e ".[test,bench]"
torchvision_hook
echo "$want" > "$stamp"
echo "setup: done ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
