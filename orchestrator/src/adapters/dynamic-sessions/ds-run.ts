import { randomUUID } from "node:crypto";
import type { ExecuteResponse } from "@tether/shared";
import { effectiveExecTimeoutMs, type OrchestratorConfig } from "../../config.js";
import { explainExecution } from "../../sessions/execution-hints.js";
import type { Session } from "../../sessions/session.js";
import { runExecution } from "../common/run-execution.js";
import { MNT_DATA } from "../common/workspace-paths.js";
import type { IdentifiedSession } from "./ds-sessions.js";

export interface DsRunResult {
  response: ExecuteResponse;
  /** A Tether note for stderr: /mnt/data is not mounted in this session. */
  note: string | undefined;
}

/**
 * Runs code in an identifier's session (started on first use). The service
 * has no stdin for code: input() fails at once. `timeoutInSeconds` becomes
 * timeoutMs, capped by TETHER_MAX_EXEC_TIMEOUT_MS.
 */
export async function runInSession(entry: IdentifiedSession, config: OrchestratorConfig, code: string, timeoutInSeconds: number | undefined): Promise<DsRunResult> {
  const { session } = await entry.slot.acquire();
  const requestedTimeoutMs = timeoutInSeconds === undefined ? undefined : timeoutInSeconds * 1000;
  const response = await runExecution(session, {
    requestId: `dsx_${randomUUID().replaceAll("-", "")}`,
    code,
    timeoutMs: effectiveExecTimeoutMs(config, requestedTimeoutMs),
    stdin: { mode: "none" },
    maxOutputBytes: config.maxOutputBytes,
  }, entry.slot.hooks.submit);
  const explained = explainExecution(response, {
    requestedTimeoutMs,
    defaultTimeoutMs: config.defaultExecTimeoutMs,
    maxTimeoutMs: config.maxExecTimeoutMs,
    stdinName: "no stdin: this API cannot answer input() (put the values in the code)",
  });
  return { response: explained, note: await dataMountNote(entry, session, explained, config) };
}

const MISSING_PATH = /FileNotFoundError|NotADirectoryError|No such file or directory/;

/**
 * Code written for Azure reads and writes /mnt/data. Sandboxed and container
 * launchers mount the workspace there; an unsandboxed local worker cannot
 * (one machine-wide path for every session). When a failure names /mnt/data,
 * ask the kernel once whether the directory exists, and if not, say so and
 * what to do instead. The code itself is never rewritten.
 */
async function dataMountNote(entry: IdentifiedSession, session: Session, response: ExecuteResponse, config: OrchestratorConfig): Promise<string | undefined> {
  if (response.status === "ok" || !response.error) return undefined;
  const text = `${response.error.value}\n${response.error.traceback.join("\n")}`;
  if (!text.includes(MNT_DATA) || !MISSING_PATH.test(text)) return undefined;
  if (entry.dataMounted === undefined) {
    const probe = await runExecution(session, {
      requestId: `dsx_${randomUUID().replaceAll("-", "")}`,
      code: `__import__("os").path.isdir(${JSON.stringify(MNT_DATA)})`,
      timeoutMs: 10_000,
      stdin: { mode: "none" },
      maxOutputBytes: config.maxOutputBytes,
    }, entry.slot.hooks.submit);
    const value = probe.outputs.find((output) => output.type === "execute_result")?.data["text/plain"];
    if (value === "True" || value === "False") entry.dataMounted = value === "True";
  }
  if (entry.dataMounted !== false) return undefined;
  return (
    `Note from Tether: ${MNT_DATA} does not exist in this session: this orchestrator's launcher does not mount the workspace there ` +
    "(the sandboxed local, docker and kubernetes launchers do). The working directory is the session's workspace, where uploaded files are: use relative paths such as 'data.csv'."
  );
}
