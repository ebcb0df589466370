import net from "node:net";
import { ObservedArray } from "./signals.js";

/**
 * A TCP proxy on 127.0.0.1 between launched workers and the orchestrator, so a
 * test can cut the worker's websocket at the network level (both ends see the
 * connection die, as on a real blip) and refuse reconnects. The upstream port
 * is set after the orchestrator listens. Server-to-client bytes of each
 * connection are kept (up to a cap) so a test can read what the orchestrator
 * told the worker: its frames are not masked.
 */
export class TcpProxy {
  private readonly server = net.createServer((client) => this.accept(client));
  private readonly live = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private readonly downstream: string[] = [];
  /** The first bytes each connection sent upstream (the worker's request and first frames). */
  private readonly upstreamHeads: Buffer[] = [];
  /** Epoch ms of every accepted connection, in order (observed: tests wait for a connection with `acceptedAt.until`). */
  readonly acceptedAt = new ObservedArray<number>();
  upstreamPort: number | undefined;
  /** While true, new connections are closed at once (the worker cannot get back). */
  refusing = false;

  static async start(): Promise<TcpProxy> {
    const proxy = new TcpProxy();
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Connections currently piped. */
  get open(): number {
    return this.live.size;
  }

  /** Destroys every piped connection in both directions; returns how many. */
  cutAll(): number {
    const count = this.live.size;
    for (const pair of this.live) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.live.clear();
    return count;
  }

  /**
   * The text of the first websocket frame a worker sent on each connection
   * (its `hello` or `resume`), unmasked: what someone on the wire between a
   * worker and the orchestrator would read.
   */
  firstFramesFromWorkers(): string[] {
    return this.upstreamHeads.map(firstClientFrame).filter((text): text is string => text !== undefined);
  }

  /** Everything the orchestrator sent through the proxy, as latin1 text. */
  sentToWorkers(): string {
    return this.downstream.join("");
  }

  async close(): Promise<void> {
    // A worker still reconnecting must not slip in between the cut and the close: server.close() would wait for it.
    this.refusing = true;
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    client.on("error", () => undefined);
    if (this.refusing || this.upstreamPort === undefined) {
      client.destroy();
      return;
    }
    this.acceptedAt.push(Date.now());
    const upstream = net.connect(this.upstreamPort, "127.0.0.1");
    upstream.on("error", () => undefined);
    const pair = { client, upstream };
    this.live.add(pair);
    let keptUp = 0;
    const head = this.upstreamHeads.push(Buffer.alloc(0)) - 1;
    client.on("data", (chunk: Buffer) => {
      if (keptUp >= 64 * 1024) return;
      this.upstreamHeads[head] = Buffer.concat([this.upstreamHeads[head]!, chunk]);
      keptUp += chunk.byteLength;
    });
    let kept = 0;
    upstream.on("data", (chunk: Buffer) => {
      if (kept < 64 * 1024) {
        this.downstream.push(chunk.toString("latin1"));
        kept += chunk.byteLength;
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      this.live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once("close", drop);
    upstream.once("close", drop);
  }
}

/** Decodes the first (masked, client-to-server) websocket frame after an HTTP upgrade request; undefined if incomplete. */
function firstClientFrame(bytes: Buffer): string | undefined {
  const headEnd = bytes.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  let at = headEnd + 4;
  if (bytes.length < at + 2) return undefined;
  let length = bytes[at + 1]! & 0x7f;
  at += 2;
  if (length === 126) {
    length = bytes.readUInt16BE(at);
    at += 2;
  } else if (length === 127) {
    length = Number(bytes.readBigUInt64BE(at));
    at += 8;
  }
  const mask = bytes.subarray(at, at + 4);
  at += 4;
  if (bytes.length < at + length) return undefined;
  const payload = Buffer.from(bytes.subarray(at, at + length));
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return payload.toString("utf8");
}
