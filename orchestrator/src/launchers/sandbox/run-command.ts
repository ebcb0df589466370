import { spawn } from "node:child_process";
import type { Writable } from "node:stream";
import type { CommandSpec } from "./sandbox-setup.js";

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command once (a start-up probe); SIGKILLed after `timeoutMs`. Never rejects: a spawn error is in `stderr`. */
export function runCommand(spec: CommandSpec, timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(spec.command, spec.args, {
        stdio: ["ignore", "pipe", "pipe", ...(spec.fd3 ? (["pipe"] as const) : [])],
        ...(spec.env ? { env: spec.env } : {}),
        ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
        ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
      });
    } catch (error) {
      // Thrown, not emitted, for some arguments (a uid this user namespace does not map: EINVAL).
      const as = spec.uid !== undefined ? ` as uid ${spec.uid}` : "";
      resolve({ code: null, signal: null, stdout: "", stderr: `could not run ${spec.command}${as}: ${(error as Error).message}` });
      return;
    }
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    // A child that exits before reading fd 3 resets the pipe: an error listener keeps that from being uncaught.
    for (const stream of child.stdio) stream?.on("error", () => undefined);
    if (spec.fd3) (child.stdio[3] as Writable | null | undefined)?.end(spec.fd3);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${error.message}` });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
