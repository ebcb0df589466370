import { chmod, mkdir, rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import type { Logger } from "pino";

/** The request head must arrive this fast and be this small: a worker sends ~300 bytes at once. */
const HEAD_TIMEOUT_MS = 10_000;
const MAX_HEAD_BYTES = 16 * 1024;
/** A worker holds one connection, two while a reconnect overlaps a dying socket; user code gets no more. */
const MAX_CONNECTIONS = 4;
/** How long an answer other than 101 may take to reach the client before both ends are closed. */
const REFUSED_ANSWER_MS = 1000;

/** File name of the socket in the relay's directory. */
export const RELAY_SOCKET_NAME = "orchestrator.sock";

export interface GatewayRelayOptions {
  /** A directory of this relay's own (created, mode 0755; removed by close()); the socket is `orchestrator.sock` in it. */
  directory: string;
  /** The worker gateway URL (ws:// or wss://): where accepted upgrades go, and the only path accepted. */
  target: string;
  logger: Logger;
}

/**
 * A per-launch unix socket that lets a worker container without any network
 * (`--network none`) dial back: it accepts only `GET <gateway path>` with
 * `Upgrade: websocket` and pipes that connection to the orchestrator's gateway,
 * over TCP (or TLS for wss://). Anything else gets 403 and is closed; nothing
 * after a refused upgrade reaches the orchestrator. User code in the container
 * can reach this socket too, so it can do exactly what the worker can: open a
 * gateway websocket, which admits nothing but a valid single-use join token
 * or resume token.
 */
export class GatewayRelay {
  private readonly server: net.Server;
  /** Every open socket, both ends: close() destroys them. */
  private readonly connections = new Set<net.Socket>();
  /** Connections accepted on the unix socket (the worker's side): at most MAX_CONNECTIONS. */
  private readonly clients = new Set<net.Socket>();
  private readonly targetUrl: URL;
  private readonly socketPath: string;
  private closing: Promise<void> | undefined;

  private constructor(private readonly options: GatewayRelayOptions) {
    this.targetUrl = new URL(options.target);
    if (this.targetUrl.protocol !== "ws:" && this.targetUrl.protocol !== "wss:") {
      throw new Error(`the relay forwards to ws:// or wss:// only, got '${options.target}'`);
    }
    this.socketPath = path.join(options.directory, RELAY_SOCKET_NAME);
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Creates the socket (world-connectable: the container's user is not ours) and starts relaying. */
  static async open(options: GatewayRelayOptions): Promise<GatewayRelay> {
    const relay = new GatewayRelay(options);
    await mkdir(options.directory, { recursive: true, mode: 0o755 });
    await rm(relay.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      relay.server.once("error", reject);
      relay.server.listen(relay.socketPath, () => {
        relay.server.off("error", reject);
        resolve();
      });
    });
    await chmod(relay.socketPath, 0o666);
    return relay;
  }

  /** The `ws+unix:` URL a worker dials to reach the gateway when the relay's directory is mounted at `mountPoint`. */
  workerUrl(mountPoint: string): string {
    return `ws+unix:${path.posix.join(mountPoint, RELAY_SOCKET_NAME)}:${this.targetUrl.pathname}${this.targetUrl.search}`;
  }

  /** Stops accepting, drops every relayed connection and removes the socket and its directory. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const socket of this.connections) socket.destroy();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      await rm(this.options.directory, { recursive: true, force: true });
    })();
    return this.closing;
  }

  private accept(client: net.Socket): void {
    if (this.closing || this.clients.size >= MAX_CONNECTIONS) {
      client.destroy();
      return;
    }
    this.connections.add(client);
    this.clients.add(client);
    client.once("close", () => {
      this.connections.delete(client);
      this.clients.delete(client);
    });
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => refuse("408 Request Timeout"), HEAD_TIMEOUT_MS);
    const refuse = (status: string): void => {
      clearTimeout(timer);
      client.off("data", onData);
      this.options.logger.warn({ status }, "relay refused a connection");
      client.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      setTimeout(() => client.destroy(), REFUSED_ANSWER_MS).unref();
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) refuse("431 Request Header Fields Too Large");
        return;
      }
      clearTimeout(timer);
      client.off("data", onData);
      client.pause();
      const request = this.rewriteUpgrade(head.subarray(0, end).toString("latin1"));
      if (!request) {
        refuse("403 Forbidden");
        return;
      }
      this.forward(client, Buffer.from(request, "latin1"), head.subarray(end + 4));
    };
    client.on("data", onData);
  }

  /** The request head to send upstream (Host set to the target), or undefined when it is not the gateway upgrade. */
  private rewriteUpgrade(head: string): string | undefined {
    const [requestLine = "", ...headerLines] = head.split("\r\n");
    const match = /^GET (\S+) HTTP\/1\.1$/.exec(requestLine);
    if (!match?.[1] || match[1].split("?")[0] !== this.targetUrl.pathname) return undefined;
    const headers = headerLines.filter((line) => !/^host:/i.test(line));
    if (!headers.some((line) => /^upgrade:\s*websocket\s*$/i.test(line))) return undefined;
    return [requestLine, `Host: ${this.targetUrl.host}`, ...headers].join("\r\n") + "\r\n\r\n";
  }

  /** Sends the upgrade request; pipes both ways once the gateway answers 101, else relays its answer and closes. */
  private forward(client: net.Socket, request: Buffer, early: Buffer): void {
    const { hostname, port, protocol } = this.targetUrl;
    const host = hostname.replace(/^\[|\]$/g, "");
    const secure = protocol === "wss:";
    const upstreamPort = Number(port) || (secure ? 443 : 80);
    const upstream = secure ? tls.connect({ host, port: upstreamPort, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port: upstreamPort });
    this.connections.add(upstream);
    upstream.once("close", () => {
      this.connections.delete(upstream);
      client.destroy();
    });
    client.once("close", () => upstream.destroy());
    upstream.on("error", (error) => {
      this.options.logger.warn({ err: error }, "relay could not reach the orchestrator");
      upstream.destroy();
    });
    upstream.write(request);
    let status = Buffer.alloc(0);
    const onAnswer = (chunk: Buffer): void => {
      status = Buffer.concat([status, chunk]);
      const lineEnd = status.indexOf("\r\n");
      if (lineEnd < 0 && status.length < MAX_HEAD_BYTES) return;
      upstream.off("data", onAnswer);
      client.write(status);
      if (/^HTTP\/1\.1 101 /.test(status.subarray(0, Math.max(lineEnd, 0)).toString("latin1"))) {
        if (early.length > 0) upstream.write(early);
        upstream.pipe(client);
        client.pipe(upstream);
        client.resume();
      } else {
        // Refused: the client may read the answer, but nothing more it sends goes upstream.
        upstream.pipe(client);
        setTimeout(() => upstream.destroy(), REFUSED_ANSWER_MS).unref();
      }
    };
    upstream.on("data", onAnswer);
  }
}
