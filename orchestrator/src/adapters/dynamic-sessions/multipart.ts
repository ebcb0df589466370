import { ErrorCodes, tetherError } from "../../errors.js";

/** One part of a multipart/form-data body. */
export interface FormPart {
  name: string | undefined;
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

/**
 * Parses a multipart/form-data body held in memory. The boundary comes from
 * the Content-Type, or, when the client mislabelled the body (Semantic
 * Kernel Python sends `Content-Type: application/json` on its multipart
 * upload), from the body's first line `--<boundary>`. Part headers may come
 * in any order (aiohttp puts Content-Type first).
 */
export function parseMultipart(body: Buffer, contentType: string | undefined): FormPart[] {
  const boundary = boundaryOf(contentType) ?? sniffBoundary(body);
  if (!boundary) throw invalid("The body is not multipart/form-data (no boundary in the Content-Type, and it does not start with '--<boundary>').");
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let position = body.indexOf(delimiter);
  if (position < 0) throw invalid("The multipart body does not contain its boundary.");
  for (;;) {
    position += delimiter.length;
    // `--` after a delimiter ends the body.
    if (body.subarray(position, position + 2).toString("latin1") === "--") break;
    position = skipLineBreak(body, position);
    const headerEnd = body.indexOf("\r\n\r\n", position);
    if (headerEnd < 0) throw invalid("A multipart part has no blank line after its headers.");
    const headers = parseHeaders(body.subarray(position, headerEnd).toString("utf8"));
    const dataStart = headerEnd + 4;
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), dataStart);
    if (next < 0) throw invalid("A multipart part is not closed by the boundary.");
    const disposition = headers.get("content-disposition") ?? "";
    parts.push({
      name: dispositionParam(disposition, "name"),
      filename: dispositionParam(disposition, "filename"),
      contentType: headers.get("content-type"),
      data: body.subarray(dataStart, next),
    });
    position = next + 2;
  }
  return parts;
}

function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\//i.test(contentType.trim())) return undefined;
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

function sniffBoundary(body: Buffer): string | undefined {
  const firstLine = body.subarray(0, Math.min(body.length, 256)).toString("latin1").split("\r\n", 1)[0] ?? "";
  const match = /^--([\x21-\x7e]{1,70})$/.exec(firstLine);
  return match?.[1];
}

function skipLineBreak(body: Buffer, position: number): number {
  if (body[position] === 0x0d && body[position + 1] === 0x0a) return position + 2;
  if (body[position] === 0x0a) return position + 1;
  return position;
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** `name="file"; filename="/mnt/data/a.txt"` → the value of one parameter (quoted or not; filename* is RFC 5987). */
function dispositionParam(disposition: string, param: string): string | undefined {
  const extended = new RegExp(`(?:^|;)\\s*${param}\\*=(?:UTF-8|utf-8)''([^;]+)`).exec(disposition);
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1]);
    } catch {
      return extended[1];
    }
  }
  const match = new RegExp(`(?:^|;)\\s*${param}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`).exec(disposition);
  const value = match?.[1] ?? match?.[2];
  return value?.replace(/\\(.)/g, "$1").trim();
}

function invalid(message: string): Error {
  return tetherError(ErrorCodes.REQUEST_INVALID, message, { hint: "Upload the file as multipart/form-data with the bytes in a part named 'file'." });
}
