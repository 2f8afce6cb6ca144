#!/usr/bin/env bash
# Build Footnote's Debian/Ubuntu package with briefcase, on this machine:
#
#   packaging/build-deb.sh            # -> dist/footnote_<version>-1~<distro>-<codename>_<arch>.deb
#   sudo apt-get install ./dist/footnote_*.deb
#
# - briefcase runs from its own venv made with the system Python (/usr/bin/python3):
#   a Linux "system" package embeds the distribution's Python, so briefcase must
#   be that Python too. The venv lives in ~/.cache/footnote-dev/briefcase-venv.
# - llama-cpp-python publishes no wheels; the wheel ./dev compiled (cached per
#   version and CMAKE_ARGS in ~/.cache/footnote-dev/llama-cpp-python/) is handed
#   to pip with --find-links, so packaging never compiles llama.cpp again. Without
#   one, ./dev setup builds it first (~5-10 min, once).
# - FOOTNOTE_DEB_COMPRESSION (default zstd: ~3 s; xz: ~150 s and ~20% smaller)
#   chooses dpkg-deb's compressor; release builds on CI use xz.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/footnote-dev"
BRIEFCASE_VENV="${FOOTNOTE_BRIEFCASE_VENV:-$CACHE/briefcase-venv}"
BRIEFCASE_VERSION="0.4.7"
SYSTEM_PYTHON=/usr/bin/python3

if [ ! -x "$SYSTEM_PYTHON" ]; then
    echo "build-deb.sh needs the distribution's Python ($SYSTEM_PYTHON): apt-get install python3-dev python3-venv" >&2
    exit 1
fi
if [ ! -x "$BRIEFCASE_VENV/bin/briefcase" ]; then
    echo "==> creating $BRIEFCASE_VENV (briefcase $BRIEFCASE_VERSION on $("$SYSTEM_PYTHON" --version))"
    "$SYSTEM_PYTHON" -m venv "$BRIEFCASE_VENV"
    "$BRIEFCASE_VENV/bin/python" -m pip install --quiet "briefcase==$BRIEFCASE_VERSION"
fi

# The llama-cpp-python wheel for the default (portable CPU) build: the same key
# ./dev computes. ./dev setup builds it when it is missing.
llama_dir() {
    local version args key
    version=$(sed -n 's/^llama-cpp-python==//p' packaging/constraints.txt)
    # shellcheck disable=SC2016
    args=$(bash -c 'source <(sed -n "/^default_cmake_args()/,/^}/p" dev); default_cmake_args')
    args=${CMAKE_ARGS-$args}
    key=$(printf '%s %s' "$version" "$args" | cksum | cut -d' ' -f1)
    echo "$CACHE/llama-cpp-python/$key"
}
LLAMA_DIR=$(llama_dir)
if ! ls "$LLAMA_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "==> no llama-cpp-python wheel in $LLAMA_DIR yet: building it with ./dev setup"
    ./dev setup
fi
echo "==> llama-cpp-python from $(ls "$LLAMA_DIR"/llama_cpp_python-*.whl)"

export PIP_FIND_LINKS="$LLAMA_DIR${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"
export DPKG_DEB_COMPRESSOR_TYPE="${FOOTNOTE_DEB_COMPRESSION:-zstd}"

briefcase=("$BRIEFCASE_VENV/bin/briefcase")
# A fresh bundle each time: `create` re-installs the requirements anyway, and a
# stale bundle would keep files a previous version had.
rm -rf build/footnote
echo "==> briefcase create (sources, requirements into the bundle)"
"${briefcase[@]}" create linux system --no-input
echo "==> briefcase build (the launcher binary)"
"${briefcase[@]}" build linux system --no-input
echo "==> briefcase package ($DPKG_DEB_COMPRESSOR_TYPE)"
"${briefcase[@]}" package linux system --no-input --adhoc-sign
ls -l dist/footnote*.deb
