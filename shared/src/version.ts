/**
 * Protocol version spoken between orchestrator and worker, and between
 * orchestrator and clients. Changes are additive: a new message type or a new
 * optional field raises the minor; only a breaking change raises the major.
 */
export const PROTOCOL_VERSION = "1.1" as const;

/** Oldest worker protocol the orchestrator still accepts. */
export const MIN_WORKER_PROTOCOL_VERSION = "1.0" as const;

/**
 * Capabilities a worker may advertise in `hello`. The orchestrator gates
 * features on these names rather than on version arithmetic.
 */
export const WorkerCapabilities = {
  /** Executes code in a Jupyter kernel (the only kind today). */
  jupyterKernel: "jupyter-kernel",
  /** Streams workspace files with credit-based flow control. */
  fileStreams: "file-streams",
  /** Answers `input()` from a list of lines without a round trip. */
  stdinLines: "stdin-lines",
  /**
   * Since 1.1: numbers its frames, acks the orchestrator's, and reconnects
   * with the `resumeToken` from welcome after a drop (see reliable-link.ts).
   */
  resume: "resume",
} as const;
export type WorkerCapability = (typeof WorkerCapabilities)[keyof typeof WorkerCapabilities];

/** Parses "major.minor" into numbers; returns undefined for anything else. */
export function parseProtocolVersion(version: string): { major: number; minor: number } | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(version);
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** True when a peer speaking `version` can talk to us (same major, not older than `minimum`). */
export function isCompatibleProtocolVersion(version: string, minimum: string = MIN_WORKER_PROTOCOL_VERSION): boolean {
  const peer = parseProtocolVersion(version);
  const min = parseProtocolVersion(minimum);
  const ours = parseProtocolVersion(PROTOCOL_VERSION);
  if (!peer || !min || !ours) return false;
  if (peer.major !== ours.major) return false;
  return peer.major > min.major || (peer.major === min.major && peer.minor >= min.minor);
}
