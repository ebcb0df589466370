# syntax=docker/dockerfile:1
# Tether worker image: the agent a launcher starts as an ephemeral job (Azure
# Container Apps Jobs, Kubernetes Jobs). It dials back to the orchestrator, so
# it exposes no port.
#
# Build context is the REPO ROOT (the workspaces share one lockfile):
#   docker build -f infra/worker.Dockerfile -t tether-worker .
# BuildKit reads infra/worker.Dockerfile.dockerignore as the ignore file for
# this build (a Dockerfile-specific ignore file: no .dockerignore at the root).
#
# Run (the orchestrator's launcher sets these; see docs/internals.md):
#   docker run --init -e TETHER_ORCHESTRATOR_URL=wss://.../v1/workers/connect \
#     -e TETHER_JOIN_TOKEN=... tether-worker
# --init (or any init as PID 1) reaps kernels orphaned if Jupyter Server dies.
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
RUN npm ci --omit=dev --workspace shared --workspace worker --no-audit --no-fund

# ---- build: compile shared + worker ----------------------------------------
FROM deps AS build
RUN npm ci --workspace shared --workspace worker --include-workspace-root --no-audit --no-fund
COPY shared/ shared/
COPY worker/ worker/
RUN npx tsc -b shared worker

# ---- runtime -----------------------------------------------------------------
FROM ${NODE_IMAGE}
# The same install script CI and `npm start` use: Debian's python3 with
# jupyter_server, ipykernel, matplotlib, numpy, pandas. --clean drops apt lists.
COPY infra/install-worker-runtime.sh /usr/local/lib/tether/install-worker-runtime.sh
RUN bash /usr/local/lib/tether/install-worker-runtime.sh --clean

WORKDIR /app
COPY --from=deps /app ./
COPY --from=build /app/shared/dist shared/dist/
COPY --from=build /app/worker/dist worker/dist/

# User code runs in this container: never as root. `node` (uid 1000) comes with
# the base image; the workspace is Jupyter's root dir and the kernel's cwd.
# Jupyter and IPython write runtime files under $HOME (/home/node): running the
# image as another uid needs a writable HOME too (e.g. -e HOME=/tmp).
RUN mkdir -p /workspace && chown node:node /workspace
USER node
ENV NODE_ENV=production \
    TETHER_WORKSPACE=/workspace \
    TETHER_PYTHON=/usr/bin/python3
WORKDIR /workspace

ENTRYPOINT ["node", "/app/worker/dist/main.js"]
