#!/usr/bin/env bash
# Installs the Python kernel runtime a Tether worker needs (Jupyter Server,
# ipykernel and the usual plotting/data packages) from Debian packages, for
# Debian's own interpreter /usr/bin/python3, and bubblewrap, the sandbox the
# local launcher runs each worker in (TETHER_SANDBOX=on, the default).
#
# One script for every place that needs the runtime:
#   - .ci/run                      (CI on a fresh machine)
#   - infra/worker.Dockerfile      (the worker image)
#   - infra/ensure-runtime.mjs     (`npm start` on a laptop, when run as root)
#
# Idempotent and non-interactive: when every package is installed already it
# says so and exits 0 without touching the network.
#
# Usage: infra/install-worker-runtime.sh [--no-update] [--clean]
#   --no-update  skip `apt-get update` (the caller has just run it)
#   --clean      remove /var/lib/apt/lists afterwards (container images)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Debian package names. python3-jupyter-client comes with jupyter-server, but it
# is named so that a broken partial install is still caught by the check below.
PACKAGES=(
  python3
  python3-ipykernel
  python3-jupyter-server
  python3-jupyter-client
  python3-matplotlib
  python3-numpy
  python3-pandas
  bubblewrap
)
PYTHON=/usr/bin/python3

run_update=1
clean_lists=0
for arg in "$@"; do
  case "$arg" in
    --no-update) run_update=0 ;;
    --clean) clean_lists=1 ;;
    -h | --help)
      sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-worker-runtime: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

say() { echo "install-worker-runtime: $*"; }
die() {
  echo "install-worker-runtime: $*" >&2
  exit 1
}

# A package counts as present only when dpkg says "install ok installed"
# (a removed package can linger in the database as "deinstall ok config-files").
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$pkg")
  done
else
  missing=("${PACKAGES[@]}")
fi

verify_python() {
  "$PYTHON" -c 'import jupyter_server, ipykernel' 2>/dev/null
}

if [[ ${#missing[@]} -eq 0 ]]; then
  if verify_python; then
    say "the Python kernel runtime and bubblewrap are already installed ($PYTHON: ${PACKAGES[*]}); nothing to do."
    exit 0
  fi
  # Every package is installed yet the imports fail: apt will not fix that.
  die "every package is installed but '$PYTHON -c \"import jupyter_server, ipykernel\"' fails; check the Python installation, or point TETHER_PYTHON at an interpreter that has jupyter_server and ipykernel."
fi

install_cmd="apt-get install -y --no-install-recommends ${PACKAGES[*]}"
# How to say "as root" in a message: nothing when we are root already.
as_root=""
[[ $(id -u) -eq 0 ]] || as_root="sudo "

if ! command -v apt-get >/dev/null 2>&1; then
  die "apt-get not found: this script supports Debian and Ubuntu only. Elsewhere, install the runtime with pip:
    python3 -m pip install jupyter_server ipykernel matplotlib numpy pandas
  and start Tether with TETHER_PYTHON=/path/to/that/python3."
fi

# Root runs apt-get directly; otherwise sudo, non-interactively when there is
# no terminal to type a password into.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    die "installing packages needs root and sudo is not available. Run, as root:
    apt-get update && $install_cmd
  or: su -c 'bash $0'"
  fi
  if [[ -t 0 ]]; then
    SUDO=(sudo env DEBIAN_FRONTEND=noninteractive)
  else
    SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
  fi
  say "not root: using sudo (missing: ${missing[*]})."
fi

say "installing the Python kernel runtime with apt-get (missing: ${missing[*]}); this takes about a minute..."
if [[ $run_update -eq 1 ]]; then
  if ! "${SUDO[@]}" apt-get update -q; then
    die "'apt-get update' failed; check the network and /etc/apt/sources.list, then run:
    ${as_root}apt-get update && ${as_root}$install_cmd"
  fi
fi
# shellcheck disable=SC2086 # $install_cmd is a list of words on purpose.
if ! "${SUDO[@]}" $install_cmd; then
  die "'apt-get install' failed. Run it yourself to see why:
    ${as_root}apt-get update && ${as_root}$install_cmd"
fi

if [[ $clean_lists -eq 1 ]]; then
  "${SUDO[@]}" apt-get clean
  "${SUDO[@]}" rm -rf /var/lib/apt/lists/*
fi

if ! verify_python; then
  die "the packages installed but '$PYTHON' still cannot import jupyter_server and ipykernel."
fi
say "done: $("$PYTHON" -c 'import sys, jupyter_server, ipykernel; print("Python %s, jupyter_server %s, ipykernel %s" % (sys.version.split()[0], jupyter_server.__version__, ipykernel.__version__))')."
