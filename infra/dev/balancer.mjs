// A small round-robin TCP balancer for trying a cluster on one machine
// (`npm run cluster`) and for the cluster tests: each connection goes to the
// next backend; one that refuses the connection is skipped (as a load
// balancer's health check would), so a killed replica costs no request.
// Bytes pass through untouched: HTTP, websockets, workers' dial-backs.
//
// Also a command (plain node, no dependencies; infra/docker-compose.cluster.yml
// runs it from the orchestrator image), stopped by SIGTERM or SIGINT:
//   node infra/dev/balancer.mjs <listen host:port> <backend host:port>...
//   node infra/dev/balancer.mjs 127.0.0.1:8080 127.0.0.1:8081 127.0.0.1:8082 127.0.0.1:8083
import net from "node:net";
import { pathToFileURL } from "node:url";

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

/** `host:port` (a bare port means 127.0.0.1), or undefined when it is not one. */
function parseAddress(text) {
  const match = /^(?:(.+):)?(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) return undefined;
  return { host: match[1] ?? "127.0.0.1", port };
}

async function main(args) {
  const addresses = args.map(parseAddress);
  const [listen, ...backends] = addresses;
  if (!listen || backends.length === 0 || addresses.includes(undefined)) {
    console.error("usage: node balancer.mjs <listen host:port> <backend host:port>...  (e.g. 127.0.0.1:8080 127.0.0.1:8081 127.0.0.1:8082)");
    process.exit(2);
  }
  const balancer = await startBalancer({ host: listen.host, port: listen.port, backends });
  console.log(`balancer: ${listen.host}:${balancer.port} -> ${backends.map((b) => `${b.host}:${b.port}`).join(", ")} (round robin)`);
  const stop = async (signal) => {
    console.log(`balancer: ${signal}, closing after ${balancer.connections} connection(s)`);
    await balancer.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`balancer: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
