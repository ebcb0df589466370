import type { ApiResponse, RestClient } from "./rest.js";

/** The pool management endpoint clients are given, as a path on the orchestrator. */
export const EP = "/dynamic-sessions";

/** A multipart/form-data body exactly as a client library frames it. */
export function multipart(boundary: string, part: { filename: string; data: string | Buffer; headerOrder?: "disposition-first" | "type-first" }): Buffer {
  const disposition = `Content-Disposition: form-data; name="file"; filename="${part.filename}"`;
  const type = "Content-Type: application/octet-stream";
  const headers = part.headerOrder === "type-first" ? `${type}\r\n${disposition}` : `${disposition}\r\n${type}`;
  return Buffer.concat([Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`), Buffer.from(part.data), Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

/** Sends one request as a client library does: method, path after the endpoint with its query as sent, headers, body. */
export function replay(client: RestClient, method: string, pathAndQuery: string, options: { json?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<ApiResponse> {
  const headers = { ...options.headers };
  if (options.json !== undefined) headers["content-type"] ??= "application/json";
  const body = options.json !== undefined ? Buffer.from(options.json) : options.body;
  return client.request(method, `${EP}/${pathAndQuery}`, { ...(body !== undefined ? { body } : {}), headers });
}

/** A JSON object body read field by field, as the Python clients index it (a missing key fails the test like a KeyError). */
export function field(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null || !(key in current)) throw new Error(`missing ${path.join(".")} in ${JSON.stringify(value).slice(0, 500)}`);
    current = Reflect.get(current, key);
  }
  return current;
}
