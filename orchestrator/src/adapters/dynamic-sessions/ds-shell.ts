import type { ExecuteResponse } from "@tether/shared";
import { capStream, lastResultText } from "./ds-results.js";
import type { ExecutionResource } from "./ds-schemas.js";

/**
 * `shellCommand` (shell session pools; LangChain's SessionsBashTool) runs as
 * a subprocess of the session's Python kernel: /bin/sh -c in the workspace,
 * stdin from the request, its stdout and stderr written to the cell's, and
 * its exit code as the cell's value. The helper's name is dunder-prefixed so
 * it does not collide with user variables.
 */
export function shellCommandCode(command: string, stdin: string | undefined): string {
  // A JSON string literal is a valid Python string literal (same escapes).
  return [
    "def __tether_shell(command, stdin):",
    "    import subprocess, sys",
    "    completed = subprocess.run(['/bin/sh', '-c', command], input=stdin, capture_output=True, text=True, errors='replace')",
    "    sys.stdout.write(completed.stdout)",
    "    sys.stderr.write(completed.stderr)",
    "    return completed.returncode",
    `__tether_shell(${JSON.stringify(command)}, ${JSON.stringify(stdin ?? "")})`,
  ].join("\n");
}

/** Exit codes for a command that did not exit by itself, as a shell would report them. */
const TIMEOUT_EXIT = "124";
const INTERRUPTED_EXIT = "130";

/** The execution resource of a shell command: status is the exit code as a string ("0"), as clients parse it with int(). */
export function shellResource(response: ExecuteResponse, maxLength: number | undefined): Pick<ExecutionResource, "status" | "result"> {
  const exit = lastResultText(response)?.trim();
  let status: string;
  if (response.status === "ok" && exit !== undefined && /^-?\d+$/.test(exit)) status = exit;
  else if (response.status === "timeout") status = TIMEOUT_EXIT;
  else if (response.status === "cancelled" || response.error?.name === "KeyboardInterrupt") status = INTERRUPTED_EXIT;
  else status = "1";
  const note = response.status === "ok" ? "" : `${response.failure?.message ?? response.error?.value ?? response.status}\n`;
  return {
    status,
    result: {
      stdout: capStream(response.stdout, maxLength),
      stderr: capStream(response.stderr + note, maxLength),
      executionTimeInMilliseconds: Math.round(response.durationMs),
    },
  };
}
