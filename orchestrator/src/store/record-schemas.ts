import { Type, type TSchema, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { SessionInfo, StdinMode } from "@tether/shared";
import type { Lease, PoolMember, WorkerWatermark } from "./cluster-store.js";

/** What the Redis store reads back is checked like any input: a record another version wrote, or a hand edit, must not pass as valid. */
const SessionRecordSchema = Type.Object({
  info: SessionInfo,
  tenant: Type.String(),
  worker: Type.Optional(Type.Object({ workerId: Type.String(), launchId: Type.String() })),
});
const StoredExecutionSchema = Type.Object({
  requestId: Type.String(),
  state: Type.Union([Type.Literal("queued"), Type.Literal("running"), Type.Literal("ended")]),
  createdAt: Type.String(),
  code: Type.Optional(Type.String()),
  timeoutMs: Type.Optional(Type.Integer()),
  stdin: Type.Optional(StdinMode),
});
const JoinTokenSchema = Type.Object({ launchId: Type.String(), sessionId: Type.Union([Type.String(), Type.Null()]), expiresAt: Type.Number() });
const LaunchSchema = Type.Object({ sessionId: Type.Union([Type.String(), Type.Null()]), replicaId: Type.String() });
const ReplicaSchema = Type.Object({ replicaId: Type.String(), address: Type.String(), draining: Type.Boolean() });
const WorkerRecordSchema = Type.Object({
  workerId: Type.String(),
  sessionId: Type.Union([Type.String(), Type.Null()]),
  launchId: Type.String(),
  resumeDigest: Type.String(),
  kernel: Type.Optional(Type.Object({ name: Type.String(), language: Type.String(), languageVersion: Type.String() })),
});

function parser<S extends TSchema>(schema: S): (text: string | null | undefined) => Static<S> | undefined {
  const check = TypeCompiler.Compile(schema);
  return (text) => {
    if (text === null || text === undefined) return undefined;
    try {
      const value: unknown = JSON.parse(text);
      return check.Check(value) ? value : undefined;
    } catch {
      return undefined;
    }
  };
}

export const parseSessionRecord = parser(SessionRecordSchema);
export const parseStoredExecution = parser(StoredExecutionSchema);
export const parseJoinToken = parser(JoinTokenSchema);
export const parseLaunch = parser(LaunchSchema);
export const parseWorkerRecord = parser(WorkerRecordSchema);
export const parseReplica = parser(ReplicaSchema);

/** Values kept as plain strings in Redis (a lease, a watermark, a pool member): written and read here. */
export function leaseValue(lease: Lease): string {
  return `${lease.replicaId}:${lease.epoch}`;
}

export function poolMemberValue(member: PoolMember): string {
  return `${member.replicaId}|${member.launchId}`;
}

export function parsePoolMember(value: string): PoolMember | undefined {
  const match = /^([^|]+)\|(.+)$/.exec(value);
  return match?.[1] && match[2] ? { replicaId: match[1], launchId: match[2] } : undefined;
}

export function parseWatermark(value: string): WorkerWatermark | undefined {
  const match = /^(.*):(\d+)$/.exec(value);
  return match?.[1] && match[2] ? { workerId: match[1], seq: Number(match[2]) } : undefined;
}

export function parseLease(value: string): Lease | undefined {
  const match = /^(.*):(\d+)$/.exec(value);
  return match?.[1] && match[2] ? { replicaId: match[1], epoch: Number(match[2]) } : undefined;
}
