import type { SessionInfo } from "@tether/shared";

/** What the REST view of a session is made of. */
export type DescribedSession = Omit<SessionInfo, "createdAt" | "lastActivityAt" | "status"> & { state: SessionInfo["status"]; createdAt: Date; lastActivityAt: Date };

/** The REST view of a session (`GET /v1/sessions/:id`). */
export function describeSession(session: DescribedSession): SessionInfo {
  const { kernel, failure, stopReason, snapshot } = session;
  return {
    id: session.id,
    status: session.state,
    phase: session.phase,
    createdAt: session.createdAt.toISOString(),
    lastActivityAt: session.lastActivityAt.toISOString(),
    metadata: session.metadata,
    idleTimeoutS: session.idleTimeoutS,
    profile: session.profile,
    ...(kernel ? { kernel } : {}),
    ...(failure ? { failure } : {}),
    ...(stopReason ? { stopReason } : {}),
    ...(snapshot ? { snapshot } : {}),
  };
}
