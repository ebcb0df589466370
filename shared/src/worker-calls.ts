import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { FileEntry, type OrchestratorMessage } from "./worker-protocol.js";

/**
 * The calls the orchestrator makes of a worker: each call type, the fields it
 * sends, and the schema of the value its call_result carries. The
 * orchestrator validates every result once, where it arrives; nobody casts.
 */
export const WorkerCallResults = {
  interrupt: Type.Object({}),
  restart: Type.Object({}),
  executions_status: Type.Object({
    running: Type.Union([Type.String(), Type.Null()]),
    queued: Type.Array(Type.String()),
    /** Ended recently (the last ones, bounded), newest last. */
    ended: Type.Array(Type.String()),
  }),
  files_list: Type.Object({
    files: Type.Array(FileEntry),
    /** More files exist than were listed. */
    truncated: Type.Boolean(),
  }),
  file_delete: Type.Object({}),
  /** Sent before the bytes: the file's size. */
  file_download: Type.Object({ size: Type.Integer({ minimum: 0 }) }),
  /** Sent once the file is complete on disk. */
  file_upload: Type.Object({ size: Type.Integer({ minimum: 0 }), modifiedAt: Type.Optional(Type.String()) }),
} satisfies Record<string, TSchema>;

export type WorkerCallType = keyof typeof WorkerCallResults;
export type WorkerCallResult<T extends WorkerCallType> = Static<(typeof WorkerCallResults)[T]>;
/** The call message of type T, as sent (with its callId). */
export type WorkerCallMessage<T extends WorkerCallType> = Extract<OrchestratorMessage, { type: T }>;
/** What a caller supplies for a call of type T: its fields but the type and callId. */
export type WorkerCallParams<T extends WorkerCallType> = Omit<WorkerCallMessage<T>, "type" | "callId">;

type ResultChecks = { [T in WorkerCallType]: TypeCheck<(typeof WorkerCallResults)[T]> };

const checks: ResultChecks = {
  interrupt: TypeCompiler.Compile(WorkerCallResults.interrupt),
  restart: TypeCompiler.Compile(WorkerCallResults.restart),
  executions_status: TypeCompiler.Compile(WorkerCallResults.executions_status),
  files_list: TypeCompiler.Compile(WorkerCallResults.files_list),
  file_delete: TypeCompiler.Compile(WorkerCallResults.file_delete),
  file_download: TypeCompiler.Compile(WorkerCallResults.file_download),
  file_upload: TypeCompiler.Compile(WorkerCallResults.file_upload),
};

/** The value of a call_result, checked against its call's schema; an error message naming the bad field otherwise. */
export function checkWorkerCallResult<T extends WorkerCallType>(type: T, value: unknown): { ok: true; value: WorkerCallResult<T> } | { ok: false; message: string } {
  const check = checks[type];
  if (check.Check(value)) return { ok: true, value };
  const first = check.Errors(value).First();
  return { ok: false, message: `The worker's '${type}' result is invalid at ${first ? `${first.path || "/"}: ${first.message}` : "/"}.` };
}
