import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface StaticFile {
  contentType: string;
  body: string | Buffer;
}

export interface StaticServer {
  /** http://127.0.0.1:<port>, which is also the page's origin. */
  origin: string;
  close(): Promise<void>;
}

/** A page's own web server on a loopback port of its own (so, another origin than the orchestrator's). */
export async function serveStatic(files: Record<string, StaticFile>): Promise<StaticServer> {
  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? "/", "http://x").pathname];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": file.contentType, "cache-control": "no-store" }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
