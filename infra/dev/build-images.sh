#!/usr/bin/env bash
# Builds Tether's images from this checkout with the legacy builder (no
# BuildKit in Debian's docker.io), host networking for npm and apt:
#   tether-worker:local         infra/worker.Dockerfile        (the docker launcher's default image)
#   tether-orchestrator:local   infra/orchestrator.Dockerfile  (infra/docker-compose.yml)
#   tether-redis:local          infra/redis.Dockerfile         (infra/docker-compose.cluster.yml)
# The base images come from infra/dev/container-engine.sh. Unchanged inputs
# hit the build cache, so a rebuild after a code change takes seconds to a
# minute. Prints how long each image took.
#
#   infra/dev/build-images.sh [worker|orchestrator|redis]...   (default: all three)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(worker orchestrator redis)
for name in "${images[@]}"; do
  case "$name" in
    worker | orchestrator | redis) ;;
    *) echo "build-images: unknown image '$name' (worker, orchestrator or redis)" >&2; exit 2 ;;
  esac
  started=$SECONDS
  log=$(mktemp /tmp/tether-build-"$name".XXXXXX.log)
  if ! docker build --network host -f "infra/$name.Dockerfile" -t "tether-$name:local" . >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build-images: building tether-$name:local failed (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
  echo "build-images: tether-$name:local built in $((SECONDS - started))s ($(docker image inspect -f '{{.Size}}' "tether-$name:local" | awk '{printf "%.0f MB", $1 / 1e6}'))"
done
