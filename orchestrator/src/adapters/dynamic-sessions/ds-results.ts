import { stripAnsi, type ExecuteResponse } from "@tether/shared";
import type { ExecutionResource, LegacyExecuteProperties } from "./ds-schemas.js";

/**
 * Execution results in the dynamic-sessions shapes. A Python exception is
 * not an HTTP error: the call answers 200 with status Failure (2024-02-02) or
 * Failed (later versions) and the plain traceback in stderr, which is what
 * the clients check.
 */

/** stderr as the service reports it: the stream, then the traceback (or why the execution ended). */
export function stderrOf(response: ExecuteResponse, extraNote?: string): string {
  const pieces = [response.stderr];
  if (response.error) pieces.push(`${stripAnsi(response.error.traceback.join("\n")) || `${response.error.name}: ${response.error.value}`}\n`);
  else if (response.failure) pieces.push(`${response.failure.message}\n`);
  if (response.error && response.failure) pieces.push(`${response.failure.message}\n`);
  if (extraNote) pieces.push(`${extraNote}\n`);
  return pieces.join("");
}

/** 2024-02-02-preview `properties`: Success/Failure, never-null stdout/stderr (AutoGen concatenates them), `result` as the clients read it. */
export function legacyProperties(response: ExecuteResponse, extraNote?: string): LegacyExecuteProperties {
  return {
    $id: "2",
    status: response.status === "ok" ? "Success" : "Failure",
    stdout: response.stdout,
    stderr: stderrOf(response, extraNote),
    result: response.status === "ok" ? legacyResult(response) : "",
    executionTimeInMilliseconds: Math.round(response.durationMs),
  };
}

/**
 * A plot as `{type: "image", format, base64_data}` (LangChain and LlamaIndex
 * look for these keys); else the last expression: numbers, strings and
 * booleans as JSON values (`1 + 1` → 2), anything else as its IPython text
 * (a list stays `"['a',\n 'b']"`, which AutoGen parses); "" when there is none.
 */
export function legacyResult(response: ExecuteResponse): unknown {
  for (const output of response.outputs) {
    for (const [mimeType, format] of [["image/png", "png"], ["image/jpeg", "jpeg"]] as const) {
      const data = output.data[mimeType];
      if (typeof data === "string") return { type: "image", format, base64_data: data.replace(/\s+/g, "") };
    }
  }
  const text = lastResultText(response);
  return text === undefined ? "" : pythonReprToJson(text);
}

/** text/plain of the last expression's value, if the code ended with one. */
export function lastResultText(response: ExecuteResponse): string | undefined {
  for (let index = response.outputs.length - 1; index >= 0; index -= 1) {
    const output = response.outputs[index];
    if (output?.type !== "execute_result") continue;
    const plain = output.data["text/plain"];
    if (typeof plain === "string") return plain;
  }
  return undefined;
}

/** The JSON value of a Python repr when it is a number, a bool or a simple string literal; the repr itself otherwise. */
export function pythonReprToJson(repr: string): unknown {
  const text = repr.trim();
  if (/^-?\d+$/.test(text)) {
    const value = Number(text);
    return Number.isSafeInteger(value) ? value : text;
  }
  if (/^-?(\d+\.\d*|\.\d+|\d+)(e[+-]?\d+)?$/i.test(text)) return Number(text);
  if (text === "True") return true;
  if (text === "False") return false;
  const literal = /^'((?:[^'\\\n]|\\.)*)'$/.exec(text) ?? /^"((?:[^"\\\n]|\\.)*)"$/.exec(text);
  if (literal?.[1] !== undefined) {
    const decoded = decodePythonEscapes(literal[1]);
    if (decoded !== undefined) return decoded;
  }
  return repr;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { "\\": "\\", "'": "'", '"': '"', n: "\n", t: "\t", r: "\r", "0": "\0", a: "\x07", b: "\b", f: "\f", v: "\v" };

function decodePythonEscapes(body: string): string | undefined {
  let out = "";
  for (let index = 0; index < body.length; index += 1) {
    const char = body[index] ?? "";
    if (char !== "\\") {
      out += char;
      continue;
    }
    const next = body[index + 1] ?? "";
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      out += simple;
      index += 1;
      continue;
    }
    const width = next === "x" ? 2 : next === "u" ? 4 : next === "U" ? 8 : 0;
    const hex = body.slice(index + 2, index + 2 + width);
    if (width === 0 || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) return undefined;
    out += String.fromCodePoint(Number.parseInt(hex, 16));
    index += 1 + width;
  }
  return out;
}

/** Azure status names of the later versions. */
export function executionStatus(response: ExecuteResponse): string {
  if (response.status === "ok") return "Succeeded";
  if (response.status === "cancelled") return "Canceled";
  return "Failed";
}

/** Cuts a stream to `outputStreamsMaxLength` characters when the request gave one. */
export function capStream(text: string, maxLength: number | undefined): string {
  return maxLength === undefined || text.length <= maxLength ? text : text.slice(0, maxLength);
}

/** `executions` result of Python code: executionResult is always a string (SK .NET types it string?; a number would not deserialize). */
export function codeExecutionResult(response: ExecuteResponse, maxLength: number | undefined, extraNote?: string): NonNullable<ExecutionResource["result"]> {
  return {
    stdout: capStream(response.stdout, maxLength),
    stderr: capStream(stderrOf(response, extraNote), maxLength),
    executionResult: response.status === "ok" ? (lastResultText(response) ?? "") : "",
    executionTimeInMilliseconds: Math.round(response.durationMs),
  };
}

/** The error member of a failed execution resource. */
export function executionError(response: ExecuteResponse): ExecutionResource["error"] {
  if (response.status === "ok") return undefined;
  if (response.error) return { code: response.error.name, message: `${response.error.name}: ${response.error.value}` };
  return { code: response.failure?.code ?? response.status, message: response.failure?.message ?? `The execution ended: ${response.status}.` };
}
