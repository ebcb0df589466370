#!/usr/bin/env bash
# Makes a real Docker engine and Tether's offline base images available on a
# Debian 12 machine where no image registry is reachable (CI, dev machines).
# The recipe and why each step is needed: shared/notes/containers.md.
#
#   infra/dev/container-engine.sh [start]   install docker.io, docker-compose, debootstrap; start dockerd if none answers; build base images
#   infra/dev/container-engine.sh stop      stop the dockerd THIS script started (by its PID), nothing else
#   infra/dev/container-engine.sh status    say whether an engine answers and who started it
#
# `start` is idempotent: packages already installed, a running engine (ours or
# anyone's) and images that already exist are kept as they are. It needs root
# (apt-get, dockerd) and never reads stdin, so it runs under CI=true.
#
# Base images it builds when missing:
#   local/debian:bookworm     debootstrap --variant=minbase from apt's own Debian mirror
#   node:20-bookworm-slim     a STAND-IN for the official image (which cannot be pulled
#                             here): this machine's node + npm on local/debian:bookworm,
#                             libstdc++6, ca-certificates, user node (uid/gid 1000) and
#                             this machine's CA bundle (see NODE_EXTRA_CA_CERTS below)
#
# Env: TETHER_ENGINE_STATE_DIR (pidfile + log, default /var/tmp/tether-container-engine),
#      TETHER_ENGINE_WAIT_S (how long to wait for `docker info`, default 60).
# Prints how long each step took.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
STATE_DIR=${TETHER_ENGINE_STATE_DIR:-/var/tmp/tether-container-engine}
PIDFILE=$STATE_DIR/dockerd.pid
LOG=$STATE_DIR/dockerd.log
SOCKET=/var/run/docker.sock
WAIT_S=${TETHER_ENGINE_WAIT_S:-60}
DEBIAN_IMAGE=local/debian:bookworm
NODE_IMAGE=node:20-bookworm-slim

say() { echo "container-engine: $*"; }
die() {
  echo "container-engine: $*" >&2
  exit 1
}
# Runs a step and prints how long it took.
timed() {
  local label=$1 started=$SECONDS
  shift
  "$@"
  say "$label took $((SECONDS - started))s"
}

engine_answers() { docker info >/dev/null 2>&1; }

# The PID in our pidfile, when that process is still a dockerd.
our_dockerd_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
  echo "$pid"
}

install_packages() {
  local missing=() pkg status
  for pkg in docker.io docker-compose debootstrap; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "packages docker.io, docker-compose and debootstrap are installed"
    return
  fi
  say "installing ${missing[*]} with apt-get"
  apt-get update -q || say "apt-get update failed; trying with the package lists we have"
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

start_engine() {
  if engine_answers; then
    if pid=$(our_dockerd_pid); then say "dockerd (pid $pid, started by this script) is running"; else say "a Docker engine already answers on $SOCKET (not started by this script; stop leaves it alone)"; fi
    return
  fi
  if pgrep -x dockerd >/dev/null 2>&1; then
    # Another dockerd that does not answer (yet): starting a second one on the same data root would fail.
    say "a dockerd is running but does not answer yet; waiting for it"
  else
    mkdir -p "$STATE_DIR"
    # setsid: its own session, so it outlives this script and a Ctrl-C in the caller's terminal.
    setsid dockerd --host "unix://$SOCKET" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    say "started dockerd (pid $!, log $LOG)"
  fi
  local deadline=$((SECONDS + WAIT_S))
  until engine_answers; do
    if [[ -f $PIDFILE ]] && ! our_dockerd_pid >/dev/null; then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd exited during start (log above, full log: $LOG)"
    fi
    ((SECONDS < deadline)) || die "no answer from 'docker info' after ${WAIT_S}s (log: $LOG)"
    sleep 0.5
  done
  say "engine ready: $(docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null)"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# First Debian mirror in apt's own sources (deb822 or one-line format), e.g. http://deb.debian.org/debian.
debian_mirror() {
  local files=() url
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do [[ -f $f ]] && files+=("$f"); done
  url=$(
    {
      grep -hE '^[[:space:]]*URIs:' "${files[@]}" 2>/dev/null | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
      grep -hE '^[[:space:]]*deb[[:space:]]' "${files[@]}" 2>/dev/null | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{print $1}'
    } | grep -E '^https?://' | grep -E '/debian/?$' | grep -v security | head -n 1
  )
  echo "${url:-http://deb.debian.org/debian}"
}

build_debian_image() {
  if image_exists "$DEBIAN_IMAGE"; then
    say "$DEBIAN_IMAGE exists"
    return
  fi
  local mirror rootfs
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/tether-debootstrap.XXXXXX)
  say "debootstrap bookworm from $mirror into $rootfs (about a minute)"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1; then
    tail -n 20 "$STATE_DIR/debootstrap.log" >&2 || true
    rm -rf "$rootfs"
    die "debootstrap failed (log: $STATE_DIR/debootstrap.log)"
  fi
  # Same suites the host uses: bookworm + updates from the mirror, security when the host has it.
  local security
  security=$(grep -rhoE 'https?://[^ ]*debian-security/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n 1 || true)
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    [[ -n $security ]] && echo "deb $security bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
  say "imported $DEBIAN_IMAGE"
}

build_node_image() {
  if image_exists "$NODE_IMAGE"; then
    say "$NODE_IMAGE exists ($(docker run --rm --network none "$NODE_IMAGE" node --version 2>/dev/null || echo '?'))"
    return
  fi
  local node npm_dir context
  node=$(readlink -f "$(command -v node)") || die "node is not installed on this machine"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [[ -f $npm_dir/package.json ]] || die "could not find npm's directory (from $(command -v npm))"
  context=$(mktemp -d /var/tmp/tether-node-image.XXXXXX)
  cp "$node" "$context/node"
  cp -a "$npm_dir" "$context/npm"
  cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca-certificates.crt"
  cat >"$context/Dockerfile" <<'EOF'
# Stand-in for the official node:20-bookworm-slim (built by infra/dev/container-engine.sh).
FROM local/debian:bookworm
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
# TLS to the npm registry from these machines goes through a CA that only the
# host's bundle has; without it `npm ci` fails with SELF_SIGNED_CERT_IN_CHAIN.
# A separate file: Debian's ca-certificates regenerates its own bundle.
COPY host-ca-certificates.crt /usr/local/share/tether/host-ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/tether/host-ca-certificates.crt
CMD ["node"]
EOF
  say "building the $NODE_IMAGE stand-in with this machine's node $(node --version)"
  if ! docker build --network host -q -t "$NODE_IMAGE" "$context" >"$STATE_DIR/node-image.log" 2>&1; then
    tail -n 20 "$STATE_DIR/node-image.log" >&2 || true
    rm -rf "$context"
    die "building $NODE_IMAGE failed (log: $STATE_DIR/node-image.log)"
  fi
  rm -rf "$context"
  say "built $NODE_IMAGE ($(docker run --rm --network none "$NODE_IMAGE" node --version))"
}

stop_engine() {
  local pid
  if ! pid=$(our_dockerd_pid); then
    say "no dockerd started by this script is running; nothing to stop"
    rm -f "$PIDFILE"
    return
  fi
  say "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  # dockerd stops its containers (10 s grace each) and containerd before it exits.
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "dockerd (pid $pid) still runs after 60s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$PIDFILE"
  say "dockerd stopped"
}

command=${1:-start}
case "$command" in
  start)
    [[ $(id -u) -eq 0 ]] || die "needs root (apt-get, dockerd); run it with sudo"
    mkdir -p "$STATE_DIR"
    total_started=$SECONDS
    timed "packages" install_packages
    timed "engine start" start_engine
    timed "$DEBIAN_IMAGE" build_debian_image
    timed "$NODE_IMAGE" build_node_image
    say "ready in $((SECONDS - total_started))s"
    ;;
  stop) stop_engine ;;
  status)
    if engine_answers; then
      if pid=$(our_dockerd_pid); then say "engine answers (dockerd pid $pid, started by this script)"; else say "engine answers (not started by this script)"; fi
    else
      say "no engine answers on $SOCKET"
      exit 1
    fi
    ;;
  *) die "unknown command '$command' (start, stop or status)" ;;
esac
