import { randomUUID } from "node:crypto";
import type { ExecuteResponse } from "@tether/shared";
import { ErrorCodes, tetherError } from "../../errors.js";
import { codeExecutionResult, executionError, executionStatus } from "./ds-results.js";
import type { ExecutionResource } from "./ds-schemas.js";
import { shellResource } from "./ds-shell.js";

/** One `executions` request: running, or finished with its folded response. */
export interface ExecutionRecord {
  readonly id: string;
  readonly tenant: string;
  readonly identifier: string;
  /** As the client sent it, capitalised: Synchronous or Asynchronous. */
  readonly executionType: string;
  readonly shell: boolean;
  readonly outputStreamsMaxLength: number | undefined;
  response: ExecuteResponse | undefined;
  /** A Tether note appended to stderr (e.g. /mnt/data is not mounted). */
  note: string | undefined;
  finishedAt: number | undefined;
}

/** Records kept per tenant at most; the oldest finished ones go first. */
const MAX_RECORDS_PER_TENANT = 10_000;
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

/**
 * The adapter's registry of executions, so `GET executions/{id}` can answer
 * for an asynchronous one while it runs and after it ended (for
 * TETHER_DYNAMIC_SESSIONS_RESULT_TTL_S after it finished). Events are folded
 * by the session core's ExecutionResultFold (through runExecution); this
 * only keeps the outcome.
 */
export class ExecutionRecords {
  private readonly byKey = new Map<string, ExecutionRecord>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly resultTtlMs: number) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, resultTtlMs / 4)));
    this.sweeper.unref();
  }

  /** Registers a new execution; `requestedId` is the client's operation-id header, if any (409 when taken). */
  add(fields: Omit<ExecutionRecord, "id" | "response" | "note" | "finishedAt">, requestedId: string | undefined): ExecutionRecord {
    if (requestedId !== undefined && !ID_PATTERN.test(requestedId)) {
      throw tetherError(ErrorCodes.REQUEST_INVALID, `The operation-id '${requestedId.slice(0, 140)}' is not usable as an execution id.`, {
        hint: "Use 1-128 letters, digits, '.', '_', '~' or '-', or send no operation-id header.",
      });
    }
    const id = requestedId ?? randomUUID();
    if (this.byKey.has(key(fields.tenant, id))) {
      throw tetherError(ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, `An execution with id '${id}' already exists.`, { hint: "Send a new operation-id, or none." });
    }
    this.evictIfFull(fields.tenant);
    const record: ExecutionRecord = { ...fields, id, response: undefined, note: undefined, finishedAt: undefined };
    this.byKey.set(key(fields.tenant, id), record);
    return record;
  }

  finish(record: ExecutionRecord, response: ExecuteResponse, note: string | undefined): void {
    record.response = response;
    record.note = note;
    record.finishedAt = Date.now();
  }

  /** The tenant's execution `id` of session `identifier`, or 404. */
  get(tenant: string, identifier: string, id: string): ExecutionRecord {
    const record = this.byKey.get(key(tenant, id));
    if (!record || record.identifier !== identifier) {
      throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${id}' in session '${identifier}'.`, {
        hint: "Execution results are kept for TETHER_DYNAMIC_SESSIONS_RESULT_TTL_S after they finish, and only on the orchestrator that ran them.",
      });
    }
    return record;
  }

  sweep(now = Date.now()): void {
    for (const [recordKey, record] of this.byKey) {
      if (record.finishedAt !== undefined && now - record.finishedAt > this.resultTtlMs) this.byKey.delete(recordKey);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.byKey.clear();
  }

  private evictIfFull(tenant: string): void {
    const own = [...this.byKey.entries()].filter(([, record]) => record.tenant === tenant);
    if (own.length < MAX_RECORDS_PER_TENANT) return;
    const oldest = own.filter(([, record]) => record.finishedAt !== undefined).sort((a, b) => (a[1].finishedAt ?? 0) - (b[1].finishedAt ?? 0))[0];
    if (!oldest) {
      throw tetherError(ErrorCodes.SESSION_QUEUE_FULL, `The tenant has ${MAX_RECORDS_PER_TENANT} executions running.`, { hint: "Wait for some to finish." });
    }
    this.byKey.delete(oldest[0]);
  }
}

function key(tenant: string, id: string): string {
  return `${tenant}\u0000${id}`;
}

/** The record as the service shows it: Running until done, then the outcome. */
export function executionResource(record: ExecutionRecord): ExecutionResource {
  const base = { id: record.id, identifier: record.identifier, executionType: record.executionType };
  const response = record.response;
  if (!response) return { ...base, status: "Running" };
  if (record.shell) return { ...base, ...shellResource(response, record.outputStreamsMaxLength) };
  const error = executionError(response);
  return {
    ...base,
    status: executionStatus(response),
    result: codeExecutionResult(response, record.outputStreamsMaxLength, record.note),
    ...(error ? { error } : {}),
  };
}
