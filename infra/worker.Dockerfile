# Tether worker image: the agent a launcher starts once per session (the
# `docker` launcher, Azure Container Apps Jobs). It dials back to the
# orchestrator and exposes no port.
#
# Build context is the REPO ROOT (the workspaces share one lockfile); the
# ignore file is /.dockerignore. Debian's docker.io has no BuildKit, so this
# file uses nothing the legacy builder lacks:
#   docker build --network host -f infra/worker.Dockerfile -t tether-worker:local .
#
# Run by hand (the docker launcher does this, with the join token on stdin and
# no network; docs/internals.md):
#   echo "$TOKEN" | docker run -i --read-only --tmpfs /tmp --tmpfs /home/node:uid=1000,gid=1000 \
#     --tmpfs /workspace:exec,uid=1000,gid=1000 -e TETHER_JOIN_TOKEN_STDIN=1 \
#     -e TETHER_ORCHESTRATOR_URL=ws://127.0.0.1:8080/v1/workers/connect --network host tether-worker:local
#
# Node 20: the repo declares node >=20.11 and CI runs 20. `npm ci` warns
# EBADENGINE for two dependencies that declare node >=22: @azure/arm-appcontainers
# (the azure launcher, orchestrator image only; the Azure SDK's support policy,
# its tests run on Node 20 in CI against a fake ARM) and cookie@2 (through
# fastify's light-my-request, loaded only by inject()). Neither is in this
# image; test/containers/images.test.ts loads and uses both in the orchestrator image.
#
# The first two stages are the same, instruction for instruction, as in
# infra/orchestrator.Dockerfile, and so is the runtime base: building both
# images reuses these layers from the build cache.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile the workspaces -----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Every workspace manifest is copied because the lockfile names all of them;
# manifests alone keep the npm ci layer cached until dependencies change.
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY orchestrator/package.json orchestrator/
COPY client/package.json client/
RUN npm ci --no-audit --no-fund
# shared + worker first: an orchestrator-only change leaves this image's layers cached.
COPY shared/ shared/
COPY worker/ worker/
RUN npx tsc -b shared worker

# ---- deps: production node_modules of shared + worker -------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY orchestrator/package.json orchestrator/
COPY client/package.json client/
RUN npm ci --omit=dev --workspace shared --workspace worker --no-audit --no-fund

# ---- runtime -----------------------------------------------------------------
FROM ${NODE_IMAGE}
# tini as PID 1: kernels orphaned when a Jupyter Server dies get reaped, and
# SIGTERM (docker stop) reaches the worker, which shuts its kernel down.
# The Python runtime comes from the same script CI and `npm start` use.
COPY infra/install-worker-runtime.sh /usr/local/lib/tether/install-worker-runtime.sh
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends tini \
 && bash /usr/local/lib/tether/install-worker-runtime.sh --no-update --clean

# The workspace is Jupyter's root dir and the kernel's cwd, also reachable as
# /mnt/data. With a read-only root filesystem the launcher mounts /workspace,
# /tmp and $HOME (Jupyter's runtime files, IPython, matplotlib's cache) writable.
RUN mkdir -p /workspace /mnt \
 && chown node:node /workspace \
 && ln -s /workspace /mnt/data
WORKDIR /app
COPY --from=deps /app ./
COPY --from=build /app/shared/dist shared/dist/
COPY --from=build /app/worker/dist worker/dist/

# User code runs in this container: never as root. `node` (uid 1000) comes with the base image.
USER node
ENV NODE_ENV=production \
    HOME=/home/node \
    TETHER_WORKSPACE=/workspace \
    TETHER_PYTHON=/usr/bin/python3
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/worker/dist/main.js"]
