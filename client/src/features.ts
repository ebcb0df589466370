import { parseProtocolVersion } from "@tether/shared";
import type { ServerHello } from "./stream-messages.js";

/**
 * What the SDK relies on from the orchestrator, by name, with the protocol
 * version that brought it and how a hello shows it (servers announce features
 * by adding fields; a field's presence beats version arithmetic).
 */
export const Features = {
  /** `?after=` replay and `seq` on every message (durable executions): resuming a dropped stream without gaps. */
  streamReplay: { since: "1.1", presentIn: (hello: ServerHello) => hello.lastSeq !== undefined },
  /** `status`/`phase` in hello and `session_status` messages: start progress and scale to zero on the stream. */
  sessionStatus: { since: "1.1", presentIn: (hello: ServerHello) => hello.status !== undefined && hello.phase !== undefined },
} as const;
export type FeatureName = keyof typeof Features;

/** Protocol majors this SDK speaks. */
export const SUPPORTED_PROTOCOL_MAJOR = 1;

export function supports(hello: ServerHello, feature: FeatureName): boolean {
  return Features[feature].presentIn(hello);
}

export function speaksSupportedProtocol(hello: ServerHello): boolean {
  return parseProtocolVersion(hello.protocolVersion)?.major === SUPPORTED_PROTOCOL_MAJOR;
}
