import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { FakeOidcProvider } from "../../../test/fakes/fake-oidc-provider.js";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, Launcher } from "../launchers/launcher.js";

const idleLauncher: Launcher = {
  kind: "idle",
  launch: async ({ launchId }) => ({ launchId, exited: new Promise<LaunchExit>(() => {}), stop: async () => {} }),
  stopAll: async () => {},
};

const API_KEY = "key-alice-secret-0123456789";
const AUDIENCE = "api://tether-logs";

/** Every log line the app writes, as text. */
class LogCapture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString("utf8");
    done();
  }
}

describe("credentials never reach the logs", () => {
  let app: TetherApp;
  let provider: FakeOidcProvider;
  let base: string;
  let sessionId: string;
  const logs = new LogCapture();

  beforeAll(async () => {
    provider = await FakeOidcProvider.start();
    await provider.addKey("RS256");
    const config = loadConfig({
      TETHER_API_KEYS: `alice:${API_KEY}`,
      TETHER_LOG_LEVEL: "trace",
      TETHER_DATA_DIR: "/tmp/tether-unit-unused",
      TETHER_OIDC_ISSUER: provider.issuer,
      TETHER_OIDC_AUDIENCE: AUDIENCE,
    });
    app = buildApp(config, { launcher: idleLauncher, logDestination: logs });
    await app.listen({ host: "127.0.0.1", port: 0 });
    base = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    sessionId = app.tether.registry.create("alice", {}).id;
  });

  afterAll(async () => {
    await app?.close();
    await provider?.close();
  });

  /** Opens the stream and resolves with the first frame's type, or the refusal's HTTP status. */
  function stream(query: string, headers: Record<string, string> = {}): Promise<string | number> {
    return new Promise((resolve) => {
      const socket = new WebSocket(`${base}/v1/sessions/${sessionId}/stream${query}`, { headers });
      socket.on("error", () => {});
      socket.once("message", (data) => {
        resolve(JSON.parse(data.toString()).type);
        socket.close();
      });
      socket.once("unexpected-response", (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
    });
  }

  it("for ?token=, ?%74oken=, Authorization: Bearer, session tokens and JWTs", async () => {
    const minted = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/tokens`, headers: { authorization: `Bearer ${API_KEY}` } });
    const sessionToken: string = minted.json().token;
    const jwt = await provider.sign((await provider.addKey("ES256")), AUDIENCE, { tid: "alice" });
    const secrets = [API_KEY, sessionToken, jwt];

    // The stream reads ?token= however its name is encoded: all of these authenticate.
    expect(await stream(`?token=${API_KEY}`)).toBe("hello");
    expect(await stream(`?%74oken=${API_KEY}`)).toBe("hello");
    expect(await stream(`?%74%6f%6b%65%6e=${encodeURIComponent(sessionToken)}&after=0`)).toBe("hello");
    expect(await stream(`?token=${jwt}`)).toBe("hello");
    expect(await stream("", { authorization: `Bearer ${sessionToken}` })).toBe("hello");
    expect(await stream("", { authorization: `Bearer ${jwt}` })).toBe("hello");
    // Refused ones are logged too.
    expect(await stream(`?token=${API_KEY}x`)).toBe(401);
    for (const [url, headers] of [
      [`/v1/sessions?token=${API_KEY}`, {}],
      [`/v1/sessions?%74oken=${API_KEY}`, {}],
      ["/v1/sessions", { authorization: `Bearer ${API_KEY}` }],
      ["/v1/sessions", { authorization: API_KEY }],
      [`/v1/sessions/${sessionId}`, { authorization: `Bearer ${sessionToken}` }],
      ["/v1/sessions", { authorization: `Bearer ${jwt}` }],
      [`/nope?token=${API_KEY}&access_token=${jwt}`, {}],
    ] as const) {
      const res = await app.inject({ method: "GET", url, headers });
      for (const secret of secrets) expect(res.body).not.toContain(secret);
    }
    // Each request left lines, some of them with a redacted URL...
    expect(logs.text).toContain("incoming request");
    expect(logs.text).toContain("?%74oken=[REDACTED]");
    expect(logs.text).toContain(`"auth":"session-token"`);
    expect(logs.text).toContain(`"auth":"oidc"`);
    // ...and not one secret.
    for (const secret of secrets) expect(logs.text).not.toContain(secret);
  });

  it("a bare key in the Authorization header (no scheme) is refused", async () => {
    const res = await app.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: API_KEY } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toMatchObject({ code: ErrorCodes.AUTH_INVALID, hint: expect.stringContaining("Bearer") });
  });
});
