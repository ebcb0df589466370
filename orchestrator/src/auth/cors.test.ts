import { afterEach, describe, expect, it } from "vitest";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes, TetherError } from "../errors.js";
import type { LaunchExit, Launcher } from "../launchers/launcher.js";

const idleLauncher: Launcher = {
  kind: "idle",
  launch: async ({ launchId }) => ({ launchId, exited: new Promise<LaunchExit>(() => {}), stop: async () => {} }),
  stopAll: async () => {},
};

const ALLOWED = "https://chat.example.com";

describe("CORS", () => {
  const apps: TetherApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  async function appWith(origins: string | undefined): Promise<TetherApp> {
    const app = buildApp(loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", ...(origins ? { TETHER_CORS_ORIGINS: origins } : {}) }), { launcher: idleLauncher });
    apps.push(app);
    await app.ready();
    return app;
  }

  const preflight = (app: TetherApp, origin: string, url = "/v1/sessions", method = "POST") =>
    app.inject({ method: "OPTIONS", url, headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization,content-type" } });

  it("answers a preflight from an allowed origin for the Authorization header and JSON bodies, without a credential", async () => {
    const app = await appWith(`${ALLOWED}, http://localhost:5173`);
    const res = await preflight(app, ALLOWED);
    expect(res.statusCode).toBe(204);
    expect(res.headers["access-control-allow-origin"]).toBe(ALLOWED);
    expect(String(res.headers["access-control-allow-headers"]).toLowerCase()).toContain("authorization");
    expect(String(res.headers["access-control-allow-headers"]).toLowerCase()).toContain("content-type");
    expect(String(res.headers["access-control-allow-methods"])).toContain("POST");
    expect(res.headers["access-control-allow-credentials"]).toBeUndefined();
    const upload = await preflight(app, "http://localhost:5173", "/v1/sessions/ses_x/files/a.csv", "PUT");
    expect(upload.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
  });

  it("adds the CORS headers to answers for allowed origins, errors included, and to no others", async () => {
    const app = await appWith(ALLOWED);
    const ok = await app.inject({ method: "GET", url: "/v1/sessions", headers: { origin: ALLOWED, authorization: "Bearer key-a" } });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["access-control-allow-origin"]).toBe(ALLOWED);
    expect(String(ok.headers.vary)).toContain("Origin");
    // A browser can read why it was refused.
    const refused = await app.inject({ method: "GET", url: "/v1/sessions", headers: { origin: ALLOWED } });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers["access-control-allow-origin"]).toBe(ALLOWED);
    const foreign = await app.inject({ method: "GET", url: "/v1/sessions", headers: { origin: "https://evil.example.net", authorization: "Bearer key-a" } });
    expect(foreign.headers["access-control-allow-origin"]).toBeUndefined();
    expect((await preflight(app, "https://evil.example.net")).headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("sends no CORS headers at all when TETHER_CORS_ORIGINS is unset", async () => {
    const app = await appWith(undefined);
    const res = await app.inject({ method: "GET", url: "/v1/sessions", headers: { origin: ALLOWED, authorization: "Bearer key-a" } });
    expect(res.statusCode).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    expect((await preflight(app, ALLOWED)).headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("refuses TETHER_CORS_ORIGINS entries that are not origins", () => {
    for (const value of ["chat.example.com", "https://chat.example.com/app", "ftp://x.example.com"]) {
      let error: unknown;
      try {
        loadConfig({ TETHER_CORS_ORIGINS: value });
      } catch (caught) {
        error = caught;
      }
      expect(error instanceof TetherError && error.code).toBe(ErrorCodes.CONFIG_INVALID);
    }
    expect(loadConfig({ TETHER_CORS_ORIGINS: "https://Chat.Example.com/, *" }).auth.corsOrigins).toEqual(["https://chat.example.com", "*"]);
  });
});
