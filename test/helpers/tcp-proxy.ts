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
