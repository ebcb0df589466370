import type { ApiKeyAuthenticator } from "./auth.js";
import type { OrchestratorConfig } from "./config.js";
import type { JoinTokenStore } from "./join-tokens.js";
import type { Launcher } from "./launchers/launcher.js";
import type { WarmPool } from "./pool/warm-pool.js";
import type { Session } from "./sessions/session.js";
import type { SessionRegistry } from "./sessions/session-registry.js";
import type { SnapshotStore } from "./snapshots/snapshot-store.js";

/** What the routes share; one per app. */
export interface AppContext {
  config: OrchestratorConfig;
  registry: SessionRegistry;
  joinTokens: JoinTokenStore;
  launcher: Launcher;
  /** TETHER_POOL_SIZE > 0 only. */
  pool: WarmPool | undefined;
  snapshots: SnapshotStore;
  auth: ApiKeyAuthenticator;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The tenant of the request's API key (empty on unauthenticated routes). */
    tenant: string;
  }
  interface FastifyContextConfig {
    /** Also accept the API key as `?token=` (browsers cannot set headers on a websocket). */
    allowQueryToken?: boolean;
  }
  interface FastifyInstance {
    tether: AppContext;
  }
}

export interface SessionParams {
  id: string;
}

/** The caller's session named in the route, or 404 (also for another tenant's). */
export function sessionOf(context: AppContext, request: { tenant: string; params: unknown }): Session {
  return context.registry.get(request.tenant, (request.params as SessionParams).id);
}
