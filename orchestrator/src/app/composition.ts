import { randomUUID } from "node:crypto";
import path from "node:path";
import type { Logger } from "pino";
import type { ApiKeyEntry, OrchestratorConfig } from "../config.js";
import { DEFAULT_PROFILE, type WorkerProfile } from "../config-profiles.js";
import type { Launcher } from "../launchers/launcher.js";
import { LocalProcessLauncher } from "../launchers/local-process.js";
import { createWorkerSpawner } from "../launchers/sandbox/sandbox-setup.js";
import { OrchestratorMetrics } from "../metrics/orchestrator-metrics.js";
import { SessionRegistry } from "../sessions/session-registry.js";
import { createSnapshotStore } from "../snapshots/create-snapshot-store.js";
import type { SnapshotStore } from "../snapshots/snapshot-store.js";
import { SnapshotSweeper } from "../snapshots/snapshot-sweeper.js";
import { Cluster } from "../cluster/cluster.js";
import { newReplicaId } from "../cluster/replica-presence.js";
import type { ClusterStore } from "../store/cluster-store.js";
import { MemoryClusterStore } from "../store/memory-store.js";
import { RedisClusterStore } from "../store/redis-store.js";
import { JoinTokens } from "../workers/join-tokens.js";
import { LaunchTable } from "../workers/launch-table.js";
import { LaunchedWorker, type LaunchedWorkerDeps } from "../workers/launched-worker.js";
import { StartLimiter } from "../workers/start-limiter.js";
import { WarmPool } from "../workers/warm-pool.js";

export interface CompositionOptions {
  /** Replaces the launcher TETHER_LAUNCHER names (tests use fakes); a function gets the app's logger. */
  launcher?: Launcher | ((logger: Logger) => Launcher);
  /** Interpreter passed to workers as TETHER_PYTHON (startOrchestrator probes it); defaults to config.python. */
  python?: string;
  /** API keys to use instead of config.apiKeys (startOrchestrator passes the generated one). */
  apiKeys?: readonly ApiKeyEntry[];
  /** Also export Node's process metrics on /metrics (process-wide observers: the server process only). */
  processMetrics?: boolean;
}

/** The long-lived parts of one orchestrator, built in one place. */
export interface Composition {
  launcher: Launcher;
  joinTokens: JoinTokens;
  /** Memory (one process), or Redis with TETHER_REDIS_URL. */
  store: ClusterStore;
  /** Set with TETHER_REDIS_URL: this replica's part in the cluster. */
  cluster: Cluster | undefined;
  launches: LaunchTable;
  limiter: StartLimiter;
  pool: WarmPool | undefined;
  snapshots: SnapshotStore;
  /** Expires old snapshots (TETHER_SNAPSHOT_TTL_S); started when the app listens. */
  sweeper: SnapshotSweeper;
  registry: SessionRegistry;
  metrics: OrchestratorMetrics;
}

/**
 * Builds the launcher, the worker plumbing (join tokens, launch table, start
 * limiter, warm pool), the snapshot store and its sweeper, and the session registry.
 * `orchestratorUrl` is resolved at each launch: the port may be chosen at listen.
 */
export function compose(config: OrchestratorConfig, options: CompositionOptions, logger: Logger, orchestratorUrl: () => string, replicaUrl: () => string): Composition {
  const python = options.python ?? config.python;
  const launcher =
    typeof options.launcher === "function"
      ? options.launcher(logger)
      : (options.launcher ??
        new LocalProcessLauncher({
          spawner: createWorkerSpawner(config.sandbox, config.workerCommand, config.dataDir, logger),
          workspacesDir: path.join(config.dataDir, "workspaces"),
          logger,
        }));
  // Its sources are read at scrape time, when the registry and the pool below exist.
  const metrics: OrchestratorMetrics = new OrchestratorMetrics({
    launcher: launcher.kind,
    sessionsByStatus: (): ReadonlyMap<string, number> => registry.countByStatus(),
    pool: () => pool?.status(),
    processMetrics: options.processMetrics ?? false,
  });
  const store: ClusterStore = config.cluster ? new RedisClusterStore(config.cluster.redisUrl, config.cluster.keyPrefix, logger) : new MemoryClusterStore();
  // A launch's routing entry outlives any worker: a session's worker lives at most its lifetime.
  const launchTtlMs = config.maxSessionLifetimeS * 1000 + config.startTimeoutMs;
  const replicaId = newReplicaId();
  const joinTokens = new JoinTokens(store, config.joinTokenTtlMs, logger, Date.now, config.cluster ? { replicaId, ttlMs: launchTtlMs } : undefined);
  const launches = new LaunchTable();
  const workerDeps: LaunchedWorkerDeps = {
    launcher,
    joinTokens,
    launches,
    logger,
    orchestratorUrl,
    workerEnv: {
      ...(python ? { TETHER_PYTHON: python } : {}),
      TETHER_INTERRUPT_GRACE_MS: String(config.interruptGraceMs),
      // A silent worker would leave nothing to explain a failed start with.
      TETHER_LOG_LEVEL: config.logLevel === "silent" ? "warn" : config.logLevel,
    },
    startTimeoutMs: config.startTimeoutMs,
    metrics,
  };
  // Each profile's launches: its fields go to the launcher, its env to the worker.
  const depsByProfile = new Map<string, LaunchedWorkerDeps>();
  const depsFor = (profile: WorkerProfile | undefined): LaunchedWorkerDeps => {
    const chosen = profile ?? config.profiles.get(DEFAULT_PROFILE) ?? { name: DEFAULT_PROFILE };
    let deps = depsByProfile.get(chosen.name);
    if (!deps) depsByProfile.set(chosen.name, (deps = { ...workerDeps, profile: chosen, workerEnv: { ...workerDeps.workerEnv, ...chosen.env } }));
    return deps;
  };
  const newLaunchId = () => `lch_${randomUUID().replaceAll("-", "")}`;
  const limiter = new StartLimiter(config.maxConcurrentStarts);
  const pool =
    config.poolSize > 0
      ? new WarmPool({
          targetSize: config.poolSize,
          limiter,
          // Default-profile workers only: a session with another profile always starts cold.
          createWorker: () => new LaunchedWorker(newLaunchId(), null, depsFor(undefined), config.poolPreload),
          logger,
        })
      : undefined;
  const snapshots = createSnapshotStore(config.snapshots, logger);
  const sweeper = new SnapshotSweeper(snapshots, config.snapshots.sweepIntervalS * 1000, logger);
  const registry: SessionRegistry = new SessionRegistry({
    logger,
    interruptGraceMs: config.interruptGraceMs,
    events: { maxBytes: config.eventLogMaxBytes, retentionMs: config.executionRetentionS * 1000, maxOutputBytes: config.maxOutputBytes },
    limiter,
    pool,
    snapshots,
    createWorker: (sessionId, profile) => new LaunchedWorker(newLaunchId(), sessionId, depsFor(profile)),
    metrics,
    defaultIdleTimeoutS: config.idleTimeoutS,
    maxLifetimeMs: config.maxSessionLifetimeS * 1000,
    maxSessionsPerTenant: config.maxSessionsPerTenant,
  });
  const cluster = config.cluster
    ? new Cluster({
        store,
        replicaId,
        config: config.cluster,
        registry,
        limiter,
        pool,
        profiles: config.profiles,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        maxSessionsPerTenant: config.maxSessionsPerTenant,
        maxConcurrentStarts: config.maxConcurrentStarts,
        launchTtlMs,
        replicaUrl,
        workersOutliveReplica: workersOutliveReplica(config),
        logger,
      })
    : undefined;
  return { launcher, joinTokens, store, cluster, launches, limiter, pool, snapshots, sweeper, registry, metrics };
}

/**
 * Whether a worker keeps running, and can reach the balancer, when the replica
 * that launched it is gone: a sandbox and the docker launcher's relay end
 * with their replica; unsandboxed local processes, containers on a network,
 * Kubernetes and Azure workers do not.
 */
function workersOutliveReplica(config: OrchestratorConfig): boolean {
  switch (config.launcher) {
    case "local":
      return config.sandbox.mode === "off";
    case "docker":
      return config.docker?.network !== "none";
    case "kubernetes":
    case "azure":
      return true;
    default: {
      const unreachable: never = config.launcher;
      return unreachable;
    }
  }
}
