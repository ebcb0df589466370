import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { postJson, unreachableReason } from "./forward.js";

describe("postJson", () => {
  let server: Server | undefined;

  afterEach(async () => {
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  const listen = async (handler: Parameters<typeof createServer>[1]): Promise<URL> => {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/sessions`);
  };

  it("gives up on a replica that accepts the connection and never answers, instead of holding the client", async () => {
    const target = await listen(() => undefined);
    const error = await postJson(target, {}, "{}", 200).then(
      () => undefined,
      (rejection: unknown) => rejection as Error,
    );
    expect(error?.message).toBe("no answer within 200 ms");
    expect(unreachableReason(error!)).toBe("no answer within 200 ms");
  });

  it("reads an answer, and calls a replica nobody listens on unreachable with a reason that names no address", async () => {
    const target = await listen((request, response) => {
      response.writeHead(201, { "content-type": "application/json" });
      response.end('{"ok":true}');
    });
    expect(await postJson(target, {}, "{}", 200)).toMatchObject({ kind: "answered", status: 201, body: '{"ok":true}' });
    server!.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    const answer = await postJson(target, {}, "{}");
    expect(answer.kind).toBe("unreachable");
    if (answer.kind === "unreachable") {
      expect(answer.cause.message).toContain("127.0.0.1");
      expect(unreachableReason(answer.cause)).toBe("ECONNREFUSED");
    }
  });
});
