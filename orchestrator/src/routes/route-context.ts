import type { IncomingMessage, ServerResponse } from "node:http";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type, type Static } from "@sinclair/typebox";
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from "fastify";
import type { Authenticator } from "../auth/authenticator.js";
import type { OriginPolicy } from "../auth/origin.js";
import type { Principal } from "../auth/principal.js";
import type { SessionTokens } from "../auth/session-tokens.js";
import type { OrchestratorConfig } from "../config.js";
import type { Cluster } from "../cluster/cluster.js";
import type { Launcher } from "../launchers/launcher.js";
import type { MetricsHooks } from "../metrics/hooks.js";
import type { Readiness } from "../metrics/readiness.js";
import type { ExecutionRequest, ExecutionSink, Session } from "../sessions/session.js";
import type { SessionRegistry } from "../sessions/session-registry.js";
import type { SnapshotStore } from "../snapshots/snapshot-store.js";
import type { ClusterStore } from "../store/cluster-store.js";
import type { JoinTokens } from "../workers/join-tokens.js";
import type { WarmPool } from "../workers/warm-pool.js";

/** What the routes share; one per app. */
export interface AppContext {
  config: OrchestratorConfig;
  registry: SessionRegistry;
  joinTokens: JoinTokens;
  launcher: Launcher;
  /** TETHER_POOL_SIZE > 0 only. */
  pool: WarmPool | undefined;
  snapshots: SnapshotStore;
  auth: Authenticator;
  sessionTokens: SessionTokens;
  /** TETHER_CORS_ORIGINS: CORS on REST routes, the Origin check on websocket upgrades. */
  origins: OriginPolicy;
  /** With TETHER_REDIS_URL: this replica's part in the cluster. */
  cluster: Cluster | undefined;
  /** Memory, or Redis with TETHER_REDIS_URL. */
  store: ClusterStore;
  /** What `/readyz` answers; startOrchestrator marks the reconcile done. */
  readiness: Readiness;
  /** The app's metrics hooks (routes report relayed frames and slow clients). */
  metrics?: MetricsHooks;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The principal's tenant (empty on unauthenticated routes). */
    tenant: string;
    /** Who the request acts for; null on unauthenticated routes (`/healthz`, the worker gateway). */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Also accept the credential as `?token=` (browsers cannot set headers on a websocket). */
    allowQueryToken?: boolean;
    /** A route under /v1/sessions/:id that session tokens may not call (deleting the session, minting and revoking tokens). */
    denySessionTokens?: boolean;
  }
  interface FastifyInstance {
    tether: AppContext;
  }
}

/**
 * A scope routes register on. Nested plugins get fastify's base logger type
 * (register does not carry the logger type through); the TypeBox provider is
 * re-applied with `withTypeProvider` in each.
 */
export type RouteScope = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** `:id` of every session route. Any string: an unknown id is a 404, not a 400. */
export const SessionParams = Type.Object({ id: Type.String() });
export type SessionParams = Static<typeof SessionParams>;

/** The caller's session named in the route, or 404 (also for another tenant's). */
export function sessionOf(context: AppContext, request: { tenant: string; params: SessionParams }): Session {
  return context.registry.get(request.tenant, request.params.id);
}

/** Queues an execution; in a cluster only once the store has it (a replica taking the session over then runs it). */
export async function startExecution(context: AppContext, session: Session, request: ExecutionRequest, sink: ExecutionSink | undefined): Promise<void> {
  session.assertNewRequestId(request.requestId);
  if (context.cluster) await context.cluster.execute(session, request, sink);
  else session.execute(request, sink);
}
