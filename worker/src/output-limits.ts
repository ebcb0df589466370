import { ErrorCodes, MAX_RICH_OUTPUT_BYTES, STREAM_CHUNK_CHARS, type ExecutionEvent } from "@tether/shared";

const MiB = 1024 * 1024;

/**
 * Cuts one execution event down to frames the link can carry (see
 * shared/frame-limits.ts): stream text in pieces of STREAM_CHUNK_CHARS, and a
 * display or result over MAX_RICH_OUTPUT_BYTES replaced by a text notice
 * whose metadata carries TETHER_ERR_OUTPUT_TOO_LARGE. Everything else passes
 * as it is. The common case (a small event) costs one length check.
 */
export function boundedEvents(event: ExecutionEvent, maxRichBytes: number = MAX_RICH_OUTPUT_BYTES, chunkChars: number = STREAM_CHUNK_CHARS): ExecutionEvent[] {
  switch (event.type) {
    case "stream":
      return event.text.length <= chunkChars ? [event] : splitStream(event, chunkChars);
    case "display":
    case "result": {
      const bytes = approximateBytes(event.data) + approximateBytes(event.metadata);
      if (bytes <= maxRichBytes) return [event];
      const notice = `[${event.type === "display" ? "A display" : "A result"} of ${(bytes / MiB).toFixed(1)} MiB was dropped: one output may be at most ${(maxRichBytes / MiB).toFixed(0)} MiB. Save large outputs to a file in the workspace and download it instead.]`;
      const metadata = { tether: { code: ErrorCodes.OUTPUT_TOO_LARGE, droppedBytes: bytes, mimeTypes: Object.keys(event.data) } };
      return [{ ...event, data: { "text/plain": notice }, metadata }];
    }
    case "error": {
      const bytes = event.value.length + event.traceback.reduce((sum, line) => sum + line.length, 0);
      if (bytes * 3 <= maxRichBytes) return [event];
      // A pathological exception message (a 100 MB string in it): keep its head and say so.
      const keep = Math.floor(maxRichBytes / 6);
      return [{ ...event, value: clip(event.value, keep), traceback: event.traceback.slice(-50).map((line) => clip(line, Math.floor(keep / 50))) }];
    }
    default:
      return [event];
  }
}

function splitStream(event: Extract<ExecutionEvent, { type: "stream" }>, chunkChars: number): ExecutionEvent[] {
  const pieces: ExecutionEvent[] = [];
  for (let start = 0; start < event.text.length; ) {
    let end = Math.min(event.text.length, start + chunkChars);
    // Never split a surrogate pair: each piece must be valid text on its own.
    const last = event.text.charCodeAt(end - 1);
    if (end < event.text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    pieces.push({ ...event, text: event.text.slice(start, end) });
    start = end;
  }
  return pieces;
}

/** A bundle's JSON size without serialising it (UTF-8 bytes of its strings, plus a little per member). */
function approximateBytes(value: unknown, depth = 0): number {
  if (typeof value === "string") return Buffer.byteLength(value) + 2;
  if (value === null || typeof value !== "object" || depth > 32) return 16;
  let total = 2;
  for (const [key, item] of Object.entries(value)) total += key.length + 3 + approximateBytes(item, depth + 1);
  return total;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)} … [${text.length - max} characters cut]`;
}
