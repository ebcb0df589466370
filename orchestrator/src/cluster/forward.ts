import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TetherError } from "../errors.js";

/** Marks a request one replica forwarded to another: the owner never forwards it again (no loops). */
export const FORWARDED_HEADER = "x-tether-forwarded-by";
/** A replica that does not accept the connection this soon is treated as unavailable (503), not waited for. */
const CONNECT_TIMEOUT_MS = 2000;
/** postJson's requests (a create on a replica with an idle pool worker) answer in well under a second; a silent replica must not hold the client. */
const ANSWER_TIMEOUT_MS = 30_000;
/** Headers about this hop only: not passed on. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "upgrade", "te", "trailer"]);

/**
 * Sends an HTTP request on to the replica that owns its session and streams
 * the answer back as it comes (a long-poll, a download). `unavailable` runs
 * when that replica cannot be reached: the caller answers 503.
 */
export function forwardRequest(request: IncomingMessage, response: ServerResponse, target: URL, replicaId: string, unavailable: (cause: Error) => void): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  }
  headers[FORWARDED_HEADER] = replicaId;
  const upstream = httpRequest({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers });
  const connectTimer = setTimeout(() => upstream.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
  upstream.once("socket", (socket: Socket) => {
    if (!socket.connecting) clearTimeout(connectTimer);
    else socket.once("connect", () => clearTimeout(connectTimer));
  });
  upstream.on("response", (answer) => {
    const passed: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) passed[name] = value;
    }
    response.writeHead(answer.statusCode ?? 502, passed);
    answer.pipe(response);
  });
  upstream.on("error", (error) => {
    clearTimeout(connectTimer);
    if (!response.headersSent) unavailable(error);
    else response.destroy(error);
  });
  // The caller went away: so does the forwarded request (a long-poll stops holding the owner).
  response.on("close", () => {
    if (!response.writableFinished) upstream.destroy();
  });
  request.pipe(upstream);
}

/**
 * Why another replica could not be reached, for a client: the error's code
 * (ECONNREFUSED, ECONNRESET) without the message, which names the replica's
 * internal address.
 */
export function unreachableReason(cause: Error): string {
  const code = (cause as NodeJS.ErrnoException).code;
  return typeof code === "string" ? code : cause.message.startsWith("no ") ? cause.message : "connection failed";
}

/** A replica's answer to a request made on a client's behalf, or why there is none. */
export type JsonAnswer = { kind: "answered"; status: number; headers: Record<string, string>; body: string } | { kind: "unreachable"; cause: Error };
/** Answer headers a caller passes on to its client. */
const ANSWER_HEADERS = ["content-type", "retry-after"];

/**
 * Posts a JSON body to another replica and reads its (small) answer. A
 * replica that cannot be connected to is "unreachable": nothing reached it,
 * so the caller may do the work itself. An error once connected rejects
 * instead: the other replica may have acted on the request.
 */
export function postJson(target: URL, headers: Record<string, string | string[]>, body: string, answerTimeoutMs = ANSWER_TIMEOUT_MS): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    let connected = false;
    // A connection of its own (agent: false): a kept-alive one to a replica that restarted since fails after "connected", which would read as "it may have acted".
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: "POST", path: target.pathname, agent: false, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } });
    const connectTimer = setTimeout(() => upstream.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    upstream.once("socket", (socket: Socket) => {
      const onConnect = () => {
        connected = true;
        clearTimeout(connectTimer);
      };
      if (!socket.connecting) onConnect();
      else socket.once("connect", onConnect);
    });
    upstream.setTimeout(answerTimeoutMs, () => upstream.destroy(new Error(`no answer within ${answerTimeoutMs} ms`)));
    upstream.on("response", (answer) => {
      const chunks: Buffer[] = [];
      answer.on("data", (chunk: Buffer) => chunks.push(chunk));
      answer.on("end", () => {
        const passed: Record<string, string> = {};
        for (const name of ANSWER_HEADERS) {
          const value = answer.headers[name];
          if (typeof value === "string") passed[name] = value;
        }
        resolve({ kind: "answered", status: answer.statusCode ?? 502, headers: passed, body: Buffer.concat(chunks).toString("utf8") });
      });
      answer.on("error", reject);
    });
    upstream.on("error", (error) => {
      clearTimeout(connectTimer);
      if (connected) reject(error);
      else resolve({ kind: "unreachable", cause: error });
    });
    upstream.end(body);
  });
}

/**
 * Sends a websocket upgrade (a client stream, a worker's dial-back) on to
 * the owning replica as raw bytes both ways: the handshake, then frames. The
 * owner's close codes and backpressure reach the peer unchanged.
 */
export function forwardUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, target: URL, replicaId: string, unavailable: (cause: Error) => void): void {
  const upstream = connect({ host: target.hostname, port: Number(target.port || 80) });
  upstream.setNoDelay(true);
  const connectTimer = setTimeout(() => upstream.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
  let connected = false;
  upstream.once("connect", () => {
    connected = true;
    clearTimeout(connectTimer);
    const lines = [`${request.method ?? "GET"} ${request.url ?? "/"} HTTP/1.1`];
    for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
      const name = request.rawHeaders[i] ?? "";
      if (name.toLowerCase() !== FORWARDED_HEADER) lines.push(`${name}: ${request.rawHeaders[i + 1] ?? ""}`);
    }
    lines.push(`${FORWARDED_HEADER}: ${replicaId}`);
    upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.byteLength > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on("error", (error) => {
    clearTimeout(connectTimer);
    if (!connected) unavailable(error);
    else socket.destroy();
  });
  upstream.on("close", () => socket.destroy());
  socket.on("error", () => upstream.destroy());
  socket.on("close", () => upstream.destroy());
}

/** An error answer on a socket that asked for an upgrade (no HTTP response object exists there). */
export function refuseUpgrade(socket: Duplex, error: TetherError): void {
  const body = JSON.stringify(error.toBody());
  const retry = error.retryAfterS !== undefined ? `Retry-After: ${error.retryAfterS}\r\n` : "";
  socket.end(
    `HTTP/1.1 ${error.statusCode} ${error.statusCode === 503 ? "Service Unavailable" : "Error"}\r\nContent-Type: application/json\r\n${retry}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** An error answer to a plain HTTP request, in the API's error shape. */
export function refuseRequest(response: ServerResponse, error: TetherError): void {
  const body = JSON.stringify(error.toBody());
  response.writeHead(error.statusCode, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    ...(error.retryAfterS !== undefined ? { "retry-after": String(error.retryAfterS) } : {}),
  });
  response.end(body);
}
