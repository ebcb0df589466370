import { readInteger, readString, type Env } from "./config-readers.js";
import { configInvalid } from "./errors.js";

/** Several replicas on one Redis (docs/internals.md, "Cluster"): set only with TETHER_REDIS_URL. */
export interface ClusterConfig {
  /** TETHER_REDIS_URL: redis:// or rediss:// (a password in it stays out of logs and worker environments). */
  redisUrl: string;
  /** TETHER_REDIS_PREFIX: prefix of every key, default `tether:` (several deployments may share a Redis). */
  keyPrefix: string;
  /**
   * TETHER_REPLICA_URL: where the other replicas reach this one (http://host:port),
   * default http://<TETHER_HOST, or the host name when it listens on every address>:<port>.
   */
  replicaUrl: string | undefined;
  /**
   * TETHER_REPLICA_TTL_MS: a replica that stopped announcing itself this long is
   * dead, and its sessions go to the next replica that needs them. Default 5000
   * (it announces every fifth of it): failover takes about this long.
   */
  replicaTtlMs: number;
  /** TETHER_DRAIN_TIMEOUT_MS: on SIGTERM, how long running executions get to end before their sessions are handed over anyway. Default 30000. */
  drainTimeoutMs: number;
}

export function readClusterConfig(env: Env): ClusterConfig | undefined {
  const redisUrl = env.TETHER_REDIS_URL?.trim();
  if (!redisUrl) return undefined;
  if (!/^rediss?:\/\//.test(redisUrl)) throw configInvalid("TETHER_REDIS_URL must start with redis:// or rediss:// (e.g. redis://127.0.0.1:6379).");
  const replicaUrl = env.TETHER_REPLICA_URL?.trim() || undefined;
  if (replicaUrl !== undefined && !/^https?:\/\/[^/]+$/.test(replicaUrl)) {
    throw configInvalid(`TETHER_REPLICA_URL must be http://host:port with no path (where other replicas reach this one), got '${replicaUrl}'.`);
  }
  return {
    redisUrl,
    keyPrefix: readString(env, "TETHER_REDIS_PREFIX", "tether:"),
    replicaUrl,
    replicaTtlMs: readInteger(env, "TETHER_REPLICA_TTL_MS", 5000, 500, 600_000),
    drainTimeoutMs: readInteger(env, "TETHER_DRAIN_TIMEOUT_MS", 30_000, 0),
  };
}
