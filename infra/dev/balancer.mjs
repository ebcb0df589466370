// A small round-robin TCP balancer for trying a cluster on one machine
// (`npm run cluster`) and for the cluster tests: each connection goes to the
// next backend; one that refuses the connection is skipped (as a load
// balancer's health check would), so a killed replica costs no request.
// Bytes pass through untouched: HTTP, websockets, workers' dial-backs.
import net from "node:net";

/**
 * @param {{ port: number; host?: string; backends: { host: string; port: number }[] }} options
 * @returns {Promise<{ port: number; close(): Promise<void>; connections: number }>}
 */
export async function startBalancer(options) {
  const host = options.host ?? "127.0.0.1";
  let next = 0;
  const live = new Set();
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    live.add(client);
    client.once("close", () => live.delete(client));
    client.on("error", () => undefined);
    client.pause();
    connect(client, 0);
  });
  let connections = 0;
  function connect(client, tried) {
    if (tried >= options.backends.length || client.destroyed) {
      client.destroy();
      return;
    }
    const backend = options.backends[next++ % options.backends.length];
    const upstream = net.connect(backend);
    upstream.setNoDelay(true);
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      connections += 1;
      live.add(upstream);
      upstream.once("close", () => live.delete(upstream));
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on("error", () => {
      if (!connected) connect(client, tried + 1);
      else client.destroy();
    });
    upstream.on("close", () => connected && client.destroy());
    client.on("close", () => upstream.destroy());
  }
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of live) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
