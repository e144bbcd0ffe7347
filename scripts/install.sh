#!/usr/bin/env bash
# Sets up .venv for vesper-fairseq from nothing; `make install` runs it. Idempotent: a second run
# with nothing changed returns in about a second. See README, "Installation".
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS-test,dev}  # set and empty: no extras
BUILD=build
FAIRSEQ=0.12.2
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
CONSTRAINTS="$VENV/.vesper-constraints.txt"  # per venv: installing another venv leaves this one be

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[install] error:\033[0m %s\n' "$*" >&2; exit 1; }
quiet_pip() { $PIP "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; }

# the fairseq patch: the script and the package it loads (the edit tables and their logic)
patch_sources() { printf '%s\n' scripts/patch_fairseq.py vesper_fairseq/fairseq_patch/*.py | LC_ALL=C sort; }
stamp_inputs() {
  # shellcheck disable=SC2046  # file names without spaces
  cat setup.py $(patch_sources) scripts/install.sh
  echo "$EXTRAS"
  cat "$CONSTRAINTS" 2>/dev/null || true
}

# -- fast path ---------------------------------------------------------------------------------
stamp="$VENV/.vesper-installed"
if [[ -f $stamp && -x $VENV/bin/python ]] && [[ "$(stamp_inputs | sha256sum)" == "$(cat "$stamp")" ]]; then
  say "up to date ($VENV); delete $stamp to force a reinstall"
  exit 0
fi

# -- python --------------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found: install Python 3.11 or run 'make install PYTHON=/path/to/python3.11'"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
  || die "$("$PYTHON" --version 2>&1) is too old: vesper-fairseq needs Python >= 3.11 (PYTHON=...)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "$PYTHON lacks the venv/ensurepip modules (Debian: apt-get install python3-venv)"
if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$BUILD/sdist"

# -- fairseq wheel (patched sdist), built in the background while torch installs ------------------
# the wheel is cached per version of the patch: a changed patch builds (and installs) a new one
patch_id=$(cat $(patch_sources) | sha256sum | cut -c1-12)
wheel_dir="$BUILD/wheels/$patch_id"
wheel_glob="$wheel_dir/fairseq-$FAIRSEQ+py311-*.whl"
build_fairseq_wheel() {
  local sdist="$BUILD/sdist/fairseq-$FAIRSEQ.tar.gz" src="$BUILD/fairseq-src"
  if [[ ! -f $sdist ]]; then
    say "downloading the fairseq $FAIRSEQ sdist (PyPI has no wheel)"
    quiet_pip download -q --no-deps --no-binary fairseq -d "$BUILD/sdist" "fairseq==$FAIRSEQ"
    [[ -f $sdist ]] || die "could not download fairseq==$FAIRSEQ from the package index"
  fi
  rm -rf "$src" && mkdir -p "$src" && tar -xzf "$sdist" -C "$src"
  say "patching fairseq $FAIRSEQ for Python >= 3.11, torch >= 2.6, numpy >= 1.24"
  "$PYTHON" scripts/patch_fairseq.py "$src/fairseq-$FAIRSEQ"
  say "building the patched wheel (fairseq $FAIRSEQ+py311, ~45 s, once)"
  quiet_pip wheel -q --no-deps -w "$wheel_dir" "$src/fairseq-$FAIRSEQ"
  compgen -G "$wheel_glob" >/dev/null || die "building the patched fairseq wheel failed (see above)"
  rm -rf "$src"
}
wheel_pid=""
if ! compgen -G "$wheel_glob" >/dev/null; then
  build_fairseq_wheel > "$BUILD/fairseq-wheel.log" 2>&1 &
  wheel_pid=$!
else
  say "reusing $(ls $wheel_glob)"
fi

# -- torch: keep the one in the venv, otherwise install $TORCH; pin it for everything after ---------
if torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
  say "keeping torch $torch_version already in $VENV"
else
  say "installing $TORCH"
  # shellcheck disable=SC2086  # TORCH may carry pip options, e.g. --index-url URL
  quiet_pip install -q $TORCH
  torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null) \
    || die "torch did not install from '$TORCH'"
fi
echo "torch==$torch_version" > "$CONSTRAINTS"

if [[ -n $wheel_pid ]]; then
  wait "$wheel_pid" || { cat "$BUILD/fairseq-wheel.log" >&2; die "the fairseq wheel build failed"; }
  cat "$BUILD/fairseq-wheel.log"
fi

# -- fairseq + this project ----------------------------------------------------------------------
say "installing fairseq $FAIRSEQ+py311 and vesper-fairseq${EXTRAS:+[$EXTRAS]} (editable), torch pinned to $torch_version"
# same version label for every patch revision: force this wheel's files in, then resolve
quiet_pip install -q --no-deps --force-reinstall $wheel_glob
quiet_pip install -q -c "$CONSTRAINTS" $wheel_glob -e ".${EXTRAS:+[$EXTRAS]}"
$PIP check || die "pip check found broken requirements (see above)"
"$VENV/bin/python" -c 'import fairseq, vesper_fairseq' 2>/dev/null \
  || die "the installed packages do not import: run '$VENV/bin/python -c \"import vesper_fairseq\"'"
stamp_inputs | sha256sum > "$stamp"
say "done: $("$VENV/bin/python" -c 'import fairseq, torch; print(f"fairseq {fairseq.__version__}, torch {torch.__version__}")')"
