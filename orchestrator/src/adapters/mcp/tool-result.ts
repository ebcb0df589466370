import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { stripAnsi, type ExecuteResponse } from "@tether/shared";
import { renderMimeBundle } from "../common/rich-output.js";

type Content = CallToolResult["content"][number];

/**
 * One execution as an MCP tool result: stdout, stderr, each rich output (an
 * image as image content, the rest as text), the value of the last
 * expression, then the exception's plain traceback or why the execution
 * ended. `isError` is set for anything but a clean run, so the model sees a
 * failure as one.
 */
export function executionToToolResult(response: ExecuteResponse, notes: readonly string[] = [], options: { briefError?: boolean } = {}): CallToolResult {
  const content: Content[] = [];
  const text = (value: string): void => {
    content.push({ type: "text", text: value });
  };
  if (response.stdout) text(response.stdout);
  if (response.stderr) text(`[stderr]\n${response.stderr}`);
  for (const output of response.outputs) {
    const rendered = renderMimeBundle(output.data);
    if (!rendered) continue;
    if (rendered.kind === "image") content.push({ type: "image", data: rendered.base64, mimeType: rendered.mimeType });
    else text(output.type === "execute_result" ? `Result:\n${rendered.text}` : rendered.text);
  }
  if (response.error) text(tracebackText(response, options.briefError === true));
  if (response.failure) text(`[${response.status}] ${response.failure.message}`);
  else if (response.status !== "ok" && response.status !== "error") text(`[${response.status}]`);
  if (response.truncated) text("[output truncated: stdout/stderr past TETHER_MAX_OUTPUT_BYTES were dropped; write large output to a file instead]");
  const allNotes = [...notes];
  if (response.resumed || response.stateLost || response.kernelRestarted) {
    allNotes.push("The kernel is new: variables and imports from earlier calls are gone (files in the workspace stay).");
  }
  for (const note of allNotes) text(`Note: ${note}`);
  if (content.length === 0) text("(no output)");
  return { content, ...(response.status === "ok" ? {} : { isError: true }) };
}

/** A tool failure the model should read (not a protocol error): one text block, isError. */
export function toolError(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

/**
 * The exception's plain traceback; only its last line for input() without
 * stdin and for an unanswered prompt (`brief`): those frames are IPython's,
 * not the user's.
 */
function tracebackText(response: ExecuteResponse, brief: boolean): string {
  const error = response.error;
  if (!error) return "";
  const summary = `${error.name}: ${error.value}`;
  if (brief || (error.name === NO_STDIN_ERROR && response.failure)) return summary;
  return stripAnsi(error.traceback.join("\n")) || summary;
}

const NO_STDIN_ERROR = "StdinNotImplementedError";
