#!/usr/bin/env bash
# Install the suite into ./.venv (Python 3.11). `./install.sh --dev` adds the test tools.
# System packages: pdflatex (texlive) to compile the generated tables; installed with
# apt-get when this runs as root on Debian/Ubuntu, otherwise named for you to install.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

if ! command -v pdflatex >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing pdflatex (texlive-latex-base, texlive-latex-recommended) with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      texlive-latex-base texlive-latex-recommended >/dev/null
  else
    echo "install.sh: pdflatex not found; tables are still written as .tex/.csv/.md, but to compile them" \
         "install texlive-latex-base and texlive-latex-recommended (or any TeX distribution)." >&2
  fi
fi

py=${PYTHON:-python3.11}
command -v "$py" >/dev/null 2>&1 || py=python3
"$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (mediapipe 0.10.21 wheels)"'
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "install.sh: done; activate with: . .venv/bin/activate"
