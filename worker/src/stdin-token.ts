import type { Readable } from "node:stream";
import { ErrorCodes } from "@tether/shared";
import { WorkerError } from "./errors.js";

/** A launcher writes the token right after it starts the worker; a minute covers a loaded host. */
const READ_TIMEOUT_MS = 60_000;
/** Join tokens are 43 characters; anything this long is not one. */
const MAX_LINE_BYTES = 4096;

/**
 * Reads the first line of `input` (the join token with TETHER_JOIN_TOKEN_STDIN=1),
 * without the newline, then stops reading and releases the stream: nothing
 * after the first line is consumed, and the worker's children never get stdin.
 * EOF before a newline yields what was read. Rejects with CONFIG_INVALID after
 * `timeoutMs` or past `maxBytes`.
 */
export function readFirstLine(input: Readable, timeoutMs = READ_TIMEOUT_MS, maxBytes = MAX_LINE_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = (error: WorkerError | undefined, line?: string): void => {
      clearTimeout(timer);
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", onError);
      input.pause();
      input.destroy();
      if (error) reject(error);
      else resolve((line ?? "").replace(/\r$/, ""));
    };
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      const newline = text.indexOf("\n");
      if (newline >= 0) finish(undefined, text.slice(0, newline));
      else if (text.length > maxBytes) finish(invalid(`its first line is longer than ${maxBytes} bytes`));
    };
    const onEnd = (): void => finish(undefined, text);
    const onError = (error: Error): void => finish(invalid(`reading it failed: ${error.message}`));
    const timer = setTimeout(() => finish(invalid(`no line arrived within ${timeoutMs} ms`)), timeoutMs);
    input.on("data", onData);
    input.once("end", onEnd);
    input.once("error", onError);
  });
}

function invalid(why: string): WorkerError {
  return new WorkerError(ErrorCodes.CONFIG_INVALID, `TETHER_JOIN_TOKEN_STDIN=1 but stdin gave no join token: ${why}.`);
}
