import { chmod, unlink } from "node:fs/promises";
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "pino";

/** The one request a sandboxed worker may make: the websocket upgrade of the worker gateway. */
export const RELAYED_PATH = "/v1/workers/connect";
/** A request head larger than this is refused (a websocket upgrade is a few hundred bytes). */
const MAX_HEAD_BYTES = 16 * 1024;
/** A client that has not sent its whole request head by then is dropped. */
const HEAD_TIMEOUT_MS = 10_000;
/** After a refusal the client gets this long to read the answer before the socket is destroyed. */
const LINGER_MS = 1000;
/**
 * Connections at a time: the worker needs one (two while a reconnect overlaps
 * a dying socket). Kernel code opening many could otherwise hold as many
 * upgraded sockets on the orchestrator.
 */
const MAX_CONNECTIONS = 4;

export interface GatewayRelayOptions {
  /** Unix socket path to listen on (its directory must exist). */
  socketPath: string;
  /** The worker gateway's real URL (ws:// or wss://), e.g. `ws://127.0.0.1:8080/v1/workers/connect`. */
  upstreamUrl: string;
  logger: Logger;
}

/**
 * A sandboxed worker has no network, so it dials the orchestrator through a
 * unix socket bound into its sandbox. This relay pipes each connection to the
 * gateway's TCP address, but only after reading the HTTP request head and
 * checking it is `GET /v1/workers/connect` asking for a websocket upgrade;
 * anything else gets 403 and is closed. It forwards nothing from the client
 * until the gateway answered 101, and closes the connection on any other
 * answer, so one connection carries one upgrade and never a second request:
 * kernel code, which can reach the socket too, cannot use it to call the
 * rest of the API. Reconnects (resume) are new connections through the same socket.
 */
export class GatewayRelay {
  private readonly server: net.Server;
  private readonly upstream: URL;
  private readonly live = new Set<net.Socket>();
  private closed = false;

  private constructor(private readonly options: GatewayRelayOptions) {
    this.upstream = new URL(options.upstreamUrl);
    this.server = net.createServer((client) => this.accept(client));
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Listens on the socket; mode 0666 so a sandbox uid other than ours can connect (the run dir's mode guards it). */
  static async start(options: GatewayRelayOptions): Promise<GatewayRelay> {
    const relay = new GatewayRelay(options);
    await unlink(options.socketPath).catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      relay.server.once("error", reject);
      relay.server.listen(options.socketPath, () => {
        relay.server.off("error", reject);
        resolve();
      });
    });
    await chmod(options.socketPath, 0o666);
    return relay;
  }

  /** Stops listening and cuts every relayed connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.live) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.live.add(socket);
    socket.once("close", () => this.live.delete(socket));
  }

  private accept(client: net.Socket): void {
    if (this.closed) return void client.destroy();
    this.track(client);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => client.destroy(), HEAD_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) refuse(client, 431, "Request Header Fields Too Large");
        return;
      }
      clearTimeout(timer);
      client.off("data", onData);
      client.pause();
      const verdict = checkRequestHead(head.subarray(0, end).toString("latin1"));
      if (!verdict.ok) {
        this.options.logger.warn({ requestLine: verdict.requestLine.slice(0, 200) }, "gateway relay refused a request from the sandbox");
        refuse(client, 403, "Forbidden");
        return;
      }
      this.connectUpstream(client, verdict.headerLines, head.subarray(end + 4));
    };
    client.on("data", onData);
    client.on("error", () => client.destroy());
    client.once("close", () => clearTimeout(timer));
  }

  private connectUpstream(client: net.Socket, headerLines: readonly string[], early: Buffer): void {
    const secure = this.upstream.protocol === "wss:";
    const port = Number(this.upstream.port) || (secure ? 443 : 80);
    const host = this.upstream.hostname.replace(/^\[(.*)\]$/, "$1");
    // noDelay: Nagle on this hop held each small frame after the first of an execution for the
    // peer's delayed ACK (trivial execute p50 52 ms instead of 32 ms on a loaded machine); ws
    // turns it off on the sockets it owns, and this one it does not see.
    const upstream = secure ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
    upstream.setNoDelay(true);
    this.track(upstream);
    const target = `${this.upstream.pathname}${this.upstream.search}`;
    const hostHeader = `Host: ${this.upstream.host}`;
    const lines = [`GET ${target} HTTP/1.1`, hostHeader, ...headerLines.filter((line) => !/^host\s*:/i.test(line))];
    upstream.once(secure ? "secureConnect" : "connect", () => upstream.write(`${lines.join("\r\n")}\r\n\r\n`));
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on("error", cut);
    client.on("error", cut);
    client.once("close", cut);
    upstream.once("close", cut);

    // Nothing the client sends goes upstream until the gateway switched protocols.
    let response = Buffer.alloc(0);
    const onResponse = (chunk: Buffer): void => {
      response = Buffer.concat([response, chunk]);
      const end = response.indexOf("\r\n\r\n");
      if (end < 0 && response.length <= MAX_HEAD_BYTES) return;
      upstream.off("data", onResponse);
      if (end < 0 || !/^HTTP\/1\.1 101 /.test(response.toString("latin1", 0, 13))) {
        // A refused upgrade: pass the answer on, and end the connection (no second request).
        upstream.destroy();
        endAndDestroy(client, response);
        return;
      }
      client.write(response);
      if (early.length > 0) upstream.write(early);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    upstream.on("data", onResponse);
  }
}

export type HeadVerdict = { ok: true; headerLines: string[] } | { ok: false; requestLine: string };

/**
 * Accepts exactly `GET /v1/workers/connect[?query] HTTP/1.1` with `Upgrade:
 * websocket`; the query is dropped (the upstream URL has its own). Returns the
 * header lines to forward (hop-by-hop headers are the client's own).
 */
export function checkRequestHead(head: string): HeadVerdict {
  const [requestLine = "", ...headerLines] = head.split("\r\n");
  const match = /^GET (\S+) HTTP\/1\.1$/.exec(requestLine);
  const target = match?.[1] ?? "";
  const pathOnly = target.split("?")[0];
  if (!match || pathOnly !== RELAYED_PATH) return { ok: false, requestLine };
  // Bare LF or NUL in the head could smuggle a second request past a lenient parser.
  if (headerLines.some((line) => /[\n\0]/.test(line) || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(line))) return { ok: false, requestLine };
  const upgrade = headerLines.find((line) => /^upgrade\s*:/i.test(line));
  if (!upgrade || !/:\s*websocket\s*$/i.test(upgrade)) return { ok: false, requestLine };
  // A body on a GET upgrade would travel as websocket bytes: refuse it outright.
  if (headerLines.some((line) => /^(content-length|transfer-encoding)\s*:/i.test(line))) return { ok: false, requestLine };
  return { ok: true, headerLines };
}

function refuse(client: net.Socket, status: number, text: string): void {
  const body = `${text}: only ${RELAYED_PATH} (websocket) is relayed from the sandbox\n`;
  endAndDestroy(client, `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Sends the last bytes; a client that keeps its end open is cut after LINGER_MS. */
function endAndDestroy(client: net.Socket, last: string | Buffer): void {
  client.end(last);
  setTimeout(() => client.destroy(), LINGER_MS).unref();
}
