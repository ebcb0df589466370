import type { SessionInfo } from "@tether/shared";

/** What the REST view of a session is made of. */
export type DescribedSession = Omit<SessionInfo, "createdAt" | "lastActivityAt" | "status" | "snapshot"> & {
  state: SessionInfo["status"];
  createdAt: Date;
  lastActivityAt: Date;
  snapshots: { info(): SessionInfo["snapshot"] };
};

/** The REST view of a session (`GET /v1/sessions/:id`). */
export function describeSession(session: DescribedSession): SessionInfo {
  const { kernel, failure, stopReason, workerSource } = session;
  const snapshot = session.snapshots.info();
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
    ...(workerSource ? { workerSource } : {}),
  };
}
