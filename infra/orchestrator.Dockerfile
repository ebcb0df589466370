# Tether orchestrator image. With TETHER_LAUNCHER=docker (infra/docker-compose.yml)
# it starts one worker container per session through the Docker socket. It also
# carries the worker and the Python kernel runtime, so TETHER_LAUNCHER=local works
# too: each worker is then a child process in this same container, running user
# code as the orchestrator's user (a single trusted machine only).
#
# Build context is the REPO ROOT; the ignore file is /.dockerignore:
#   docker build --network host -f infra/orchestrator.Dockerfile -t tether-orchestrator:local .
#
# Node 20: the repo declares node >=20.11 and CI runs 20. `npm ci` warns
# EBADENGINE for @azure/arm-appcontainers (declares node >=22: the Azure SDK's
# support policy; the azure launcher's tests run on Node 20 against a fake ARM)
# and cookie@2 (through fastify's light-my-request, only loaded by inject()).
# The warnings are harmless on 20: test/containers/images.test.ts loads and
# uses both in this image.
#
# The build and deps stages and the runtime base repeat infra/worker.Dockerfile's
# instructions on purpose: the second image reuses the first one's cached layers.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile the workspaces -----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY orchestrator/package.json orchestrator/
COPY client/package.json client/
RUN npm ci --no-audit --no-fund
# shared + worker first, as in worker.Dockerfile (cached across both), then the orchestrator.
COPY shared/ shared/
COPY worker/ worker/
RUN npx tsc -b shared worker
COPY orchestrator/ orchestrator/
RUN npx tsc -b orchestrator
# The playground page (/playground): the SDK and the page, bundled for browsers with esbuild.
COPY client/ client/
RUN npx tsc -b client && node client/scripts/build-browser.mjs --quiet

# ---- deps: production node_modules of every workspace -------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY orchestrator/package.json orchestrator/
COPY client/package.json client/
RUN npm ci --omit=dev --no-audit --no-fund

# ---- runtime -----------------------------------------------------------------
FROM ${NODE_IMAGE}
# tini as PID 1 reaps orphaned kernels (local launcher) and forwards SIGTERM.
COPY infra/install-worker-runtime.sh /usr/local/lib/tether/install-worker-runtime.sh
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends tini \
 && bash /usr/local/lib/tether/install-worker-runtime.sh --no-update --clean

# Data dir: generated API key, snapshots, local workers' workspaces. It is the
# only place the orchestrator writes (besides /tmp): read-only root friendly.
RUN mkdir -p /data && chown node:node /data
WORKDIR /app
COPY --from=deps /app ./
COPY --from=build /app/shared/dist shared/dist/
COPY --from=build /app/worker/dist worker/dist/
COPY --from=build /app/orchestrator/dist orchestrator/dist/
COPY --from=build /app/client/dist/playground client/dist/playground/
# The round-robin TCP balancer of infra/docker-compose.cluster.yml (plain node, no dependencies).
COPY infra/dev/balancer.mjs infra/dev/balancer.mjs

USER node
# 0.0.0.0 so a published port reaches it on a bridge network; with host
# networking (infra/docker-compose.yml) set TETHER_HOST=127.0.0.1.
ENV NODE_ENV=production \
    HOME=/home/node \
    TETHER_HOST=0.0.0.0 \
    TETHER_PORT=8080 \
    TETHER_DATA_DIR=/data \
    TETHER_PYTHON=/usr/bin/python3
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "/app/orchestrator/dist/server.js"]
