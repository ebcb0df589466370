import { request as httpRequest } from "node:http";
import { Readable } from "node:stream";

/**
 * A fetch that opens a new TCP connection for every request (no keep-alive):
 * behind the round-robin balancer, which picks a replica per connection,
 * consecutive requests of one client land on different replicas, as they
 * would behind a balancer that spreads requests.
 */
export async function freshConnectionFetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
  const target = new URL(String(url));
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, name) => (headers[name] = value));
  const body = typeof init.body === "string" ? init.body : undefined;
  if (init.body != null && body === undefined) throw new Error("freshConnectionFetch sends string bodies only");
  return new Promise<Response>((resolve, reject) => {
    const outgoing = httpRequest({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: init.method ?? "GET", headers, agent: false }, (incoming) => {
      const answer = new Headers();
      for (const [name, value] of Object.entries(incoming.headers)) if (value !== undefined) answer.set(name, Array.isArray(value) ? value.join(", ") : value);
      const status = incoming.statusCode ?? 502;
      const stream = [204, 205, 304].includes(status) ? null : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>);
      resolve(new Response(stream, { status, headers: answer }));
    });
    init.signal?.addEventListener("abort", () => outgoing.destroy(new Error("aborted")), { once: true });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}
