#!/usr/bin/env bash
# Create the interpreters `dynamo-iac local` runs Dynamo and aiperf with, reproducibly.
#
#   scripts/dynamo-env.sh [dynamo|aiperf|all] [--check] [--force] [--relock]
#
#   .venv-dynamo  ai-dynamo + ai-dynamo-runtime 1.6.1 (python -m dynamo.frontend / dynamo.mocker)
#   .venv-aiperf  aiperf 0.13.0 (`dynamo-iac local bench`)
#
# Why not `pip install ai-dynamo`: ai-dynamo 1.6.1 pins pydantic<=2.13.5 (ours and aiperf's are
# newer), asks for a certifi release PyPI does not have, and pulls `aisimulate`, a stub sdist whose
# build downloads from NVIDIA's private index. So each venv is installed from a hash-pinned lock
# (scripts/dynamo-env/*.lock.txt, resolved by uv with overrides.txt) with no dependency resolution
# at install time: `uv pip sync --require-hashes`, or `pip install --no-deps --require-hashes`.
#
# Idempotent: a stamp (lock hash + interpreter version) makes a second run a no-op in milliseconds.
#
# Environment:
#   DYNAMO_IAC_DYNAMO_PYTHON   use this interpreter for Dynamo instead of creating .venv-dynamo
#   DYNAMO_IAC_AIPERF_PYTHON   use this interpreter for aiperf instead of creating .venv-aiperf
#   DYNAMO_IAC_VENV_ROOT       where the venvs go (default: the repository root)
#   DYNAMO_IAC_BASE_PYTHON     interpreter the venvs are made from (default: python3.11, python3)
#   DYNAMO_IAC_INSTALLER       uv | pip | auto (default auto: uv if found or installable, else pip)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
LOCKS="$HERE/dynamo-env"
VENV_ROOT="${DYNAMO_IAC_VENV_ROOT:-$ROOT}"
UV_VERSION="0.13.9"          # only for bootstrapping uv when none is on PATH
export UV_PYTHON_DOWNLOADS=never   # uv must use the given interpreter, never fetch one

say() { printf 'dynamo-env: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

targets=() check=0 force=0 relock=0
for a in "$@"; do
  case "$a" in
    dynamo|aiperf) targets+=("$a") ;;
    all) targets+=(dynamo aiperf) ;;
    --check) check=1 ;;
    --force) force=1 ;;
    --relock) relock=1 ;;
    -h|--help) usage 0 ;;
    *) say "unknown argument: $a"; usage 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(dynamo aiperf)

base_python() {
  local py="${DYNAMO_IAC_BASE_PYTHON:-}"
  if [ -z "$py" ]; then
    for c in python3.11 python3 python; do
      if command -v "$c" >/dev/null 2>&1; then py="$c"; break; fi
    done
  fi
  [ -n "$py" ] || die "no python3 found (fix: install Python >= 3.11 or set DYNAMO_IAC_BASE_PYTHON)"
  command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || die "DYNAMO_IAC_BASE_PYTHON=$py is not executable"
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$py is $("$py" -V 2>&1); the locks are for Python >= 3.11 (fix: set DYNAMO_IAC_BASE_PYTHON)"
  # The real path: pyenv shims and the like must not end up inside a venv's pyvenv.cfg.
  "$py" -c 'import sys; print(sys.executable)'
}

# Sets UV to a usable uv binary, or leaves it empty (pip fallback).
UV=""
find_uv() {
  local mode="${DYNAMO_IAC_INSTALLER:-auto}"
  case "$mode" in
    pip) return 0 ;;
    uv|auto) ;;
    *) die "DYNAMO_IAC_INSTALLER=$mode (fix: use uv, pip or auto)" ;;
  esac
  if command -v uv >/dev/null 2>&1; then UV="$(command -v uv)"; return 0; fi
  local tools="$VENV_ROOT/.venv-uv"
  if [ ! -x "$tools/bin/uv" ]; then
    say "no uv on PATH; installing uv==$UV_VERSION into $tools"
    if ! { "$BASE_PY" -m venv "$tools" && "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"; }; then
      rm -rf "$tools"
      [ "$mode" = uv ] && die "could not install uv (fix: pip install uv, or DYNAMO_IAC_INSTALLER=pip)"
      say "could not install uv; falling back to pip"
      return 0
    fi
  fi
  UV="$tools/bin/uv"
}

relock() {
  [ -n "$UV" ] || die "--relock needs uv (fix: pip install uv)"
  local name
  for name in dynamo aiperf; do
    local extra=()
    [ "$name" = dynamo ] && extra=(--override "$LOCKS/overrides.txt")
    say "locking $name"
    (cd "$LOCKS" && "$UV" pip compile -q --universal --python-version 3.11 --generate-hashes \
      --custom-compile-command "scripts/dynamo-env.sh --relock" "${extra[@]}" \
      "$name.in" -o "$name.lock.txt")
  done
}

# What proves a venv works; cheap, but imports the modules the launcher runs.
probe_cmd() {
  case "$1" in
    dynamo) echo 'import dynamo._core, dynamo.frontend, dynamo.mocker, zmq' ;;
    aiperf) echo 'import aiperf, aiperf.cli' ;;
  esac
}

stamp_of() {   # lock hash + interpreter version: any change rebuilds the venv
  local lock="$1" py="$2"
  printf '%s %s\n' "$(sha256sum "$lock" | cut -d' ' -f1)" "$("$py" -c 'import sys; print(sys.version.split()[0])')"
}

ensure() {
  local name="$1"
  local upper; upper="$(echo "$name" | tr a-z A-Z)"
  local override_var="DYNAMO_IAC_${upper}_PYTHON"
  local given="${!override_var:-}"
  if [ -n "$given" ]; then
    [ -x "$given" ] || die "$override_var=$given is not an executable interpreter"
    "$given" -c "$(probe_cmd "$name")" 2>/dev/null \
      || die "$override_var=$given cannot import the $name modules (fix: unset it to let this script build .venv-$name)"
    say "$name: using $override_var=$given"
    return 0
  fi

  local venv="$VENV_ROOT/.venv-$name" lock="$LOCKS/$name.lock.txt"
  [ -f "$lock" ] || die "missing $lock (fix: scripts/dynamo-env.sh --relock)"
  # one build of a venv at a time (parallel test runs, CI retries); other venvs build alongside
  local lockfd
  exec {lockfd}>"${TMPDIR:-/tmp}/dynamo-iac-env-$(printf %s "$venv" | sha256sum | cut -c1-16).lock"
  flock "$lockfd"
  local want; want="$(stamp_of "$lock" "$BASE_PY")"
  if [ "$force" = 0 ] && [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.dynamo-iac-stamp" 2>/dev/null)" = "$want" ]; then
    if [ "$check" = 1 ]; then
      "$venv/bin/python" -c "$(probe_cmd "$name")" || die "$venv is stamped but broken (fix: rerun with --force)"
    fi
    say "$name: $venv is up to date"
    return 0
  fi

  local t0=$SECONDS
  [ "$UV_RESOLVED" = 1 ] || { find_uv; UV_RESOLVED=1; }
  say "$name: building $venv from $(basename "$lock")"
  rm -rf "$venv"
  if [ -z "$UV" ] || ! { "$UV" venv -q -p "$BASE_PY" "$venv" \
                         && "$UV" pip sync -q --require-hashes --python "$venv/bin/python" "$lock"; }; then
    if [ -n "$UV" ]; then
      [ "${DYNAMO_IAC_INSTALLER:-auto}" = uv ] && die "uv could not install $lock"
      say "$name: uv failed; installing with pip instead"
      rm -rf "$venv"
    fi
    "$BASE_PY" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r "$lock"
  fi
  "$venv/bin/python" -c "$(probe_cmd "$name")" || die "$venv was installed but does not import (see above)"
  echo "$want" > "$venv/.dynamo-iac-stamp"
  say "$name: ready in $((SECONDS - t0)) s ($(du -sh "$venv" | cut -f1))"
}

mkdir -p "$VENV_ROOT"
BASE_PY="$(base_python)"
UV_RESOLVED=0            # uv is looked for (or bootstrapped) only when something must be built
if [ "$relock" = 1 ]; then find_uv; UV_RESOLVED=1; relock; fi
for t in "${targets[@]}"; do ensure "$t"; done
