# Redis for infra/docker-compose.cluster.yml: Debian's redis-server (7.0 in
# bookworm) on the local Debian base, since no image registry is reachable
# here (infra/dev/container-engine.sh builds local/debian:bookworm). Build
# context: any directory (nothing is copied in); infra/dev/build-images.sh:
#   docker build --network host -f infra/redis.Dockerfile -t tether-redis:local .
#
# Runs as Debian's `redis` user with its data (the append-only file) in
# /data; the compose file passes the port, the bind address and persistence.
ARG DEBIAN_IMAGE=local/debian:bookworm
FROM ${DEBIAN_IMAGE}
# policy-rc.d: the package's postinst would otherwise start a redis-server during
# the build (a debootstrapped base has none; the official Debian images do).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /data \
 && chown redis:redis /data
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
CMD ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "everysec"]
