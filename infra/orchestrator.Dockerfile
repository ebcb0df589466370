# syntax=docker/dockerfile:1
# Tether orchestrator image. It also carries the worker and the Python kernel
# runtime, because the default launcher (TETHER_LAUNCHER=local) runs each
# session's worker as a child process in this same container. That is the
# single-machine setup: user code then runs in the orchestrator's container,
# as its user. For isolation per session, use a job launcher and the worker
# image (infra/worker.Dockerfile).
#
# Build context is the REPO ROOT (the workspaces share one lockfile):
#   docker build -f infra/orchestrator.Dockerfile -t tether-orchestrator .
# BuildKit reads infra/orchestrator.Dockerfile.dockerignore as the ignore file.
#
# NOT VERIFIED: there is no Docker engine on the machine this was written on;
# every step was exercised outside Docker (same script, same npm commands).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- deps: production node_modules only -------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# Every workspace manifest is copied because the lockfile names all of them;
# manifests alone keep this layer cached until dependencies change.
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY orchestrator/package.json orchestrator/
RUN npm ci --omit=dev --no-audit --no-fund

# ---- build: compile every workspace ----------------------------------------
FROM deps AS build
RUN npm ci --no-audit --no-fund
COPY shared/ shared/
COPY worker/ worker/
COPY orchestrator/ orchestrator/
RUN npx tsc -b shared worker orchestrator

# ---- runtime -----------------------------------------------------------------
FROM ${NODE_IMAGE}
# Python kernel runtime for the local-process launcher's workers (same script as CI).
COPY infra/install-worker-runtime.sh /usr/local/lib/tether/install-worker-runtime.sh
RUN bash /usr/local/lib/tether/install-worker-runtime.sh --clean

WORKDIR /app
COPY --from=deps /app ./
COPY --from=build /app/shared/dist shared/dist/
COPY --from=build /app/worker/dist worker/dist/
COPY --from=build /app/orchestrator/dist orchestrator/dist/

# Data dir: generated API key (api-key) and session workspaces. Workers run as
# `node` too; Jupyter writes its runtime files under $HOME (/home/node).
RUN mkdir -p /data && chown node:node /data
USER node
# 0.0.0.0 inside the container so a published port reaches it; workers started
# by the local launcher dial back over loopback.
ENV NODE_ENV=production \
    TETHER_HOST=0.0.0.0 \
    TETHER_PORT=8080 \
    TETHER_DATA_DIR=/data \
    TETHER_PYTHON=/usr/bin/python3
VOLUME ["/data"]
EXPOSE 8080

CMD ["node", "orchestrator/dist/server.js"]
