import { afterEach, describe, expect, it } from "vitest";
import { parsePrometheus, sampleValue } from "../../../test/helpers/prometheus.js";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, LaunchHandle, Launcher, LaunchRequest } from "../launchers/launcher.js";

/** Records each launch; its workers never dial back, so sessions stay `starting`. */
class RecordingLauncher implements Launcher {
  readonly kind = "recording";
  readonly requests: LaunchRequest[] = [];
  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    this.requests.push(request);
    let exit!: (value: LaunchExit) => void;
    const exited = new Promise<LaunchExit>((resolve) => (exit = resolve));
    return { launchId: request.launchId, exited, stop: async (reason) => exit({ code: 0, signal: null, reason, stderrTail: [] }) };
  }
  async stopAll(): Promise<void> {}
}

const KEY = { authorization: "Bearer key-a" };
const METRICS_TOKEN = "metrics-token-0123456789";

function appWith(env: Record<string, string> = {}, launcher: Launcher = new RecordingLauncher()): TetherApp {
  const config = loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", TETHER_DATA_DIR: "/tmp/tether-unit-unused", TETHER_PUBLIC_URL: "ws://127.0.0.1:9", ...env });
  return buildApp(config, { launcher });
}

describe("operations routes (inject)", () => {
  let app: TetherApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("serves /metrics in Prometheus text format to loopback clients when TETHER_METRICS_TOKEN is unset, and 403 to anyone else", async () => {
    app = appWith();
    const local = await app.inject({ method: "GET", url: "/metrics", remoteAddress: "127.0.0.1" });
    expect(local.statusCode).toBe(200);
    expect(local.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(parsePrometheus(local.body), "tether_sessions", { status: "ready", launcher: "recording" })).toBe(0);
    expect((await app.inject({ method: "GET", url: "/metrics", remoteAddress: "::1" })).statusCode).toBe(200);
    for (const request of [
      { remoteAddress: "10.1.2.3", headers: {} },
      { remoteAddress: "127.0.0.1", headers: { "x-forwarded-for": "203.0.113.9" } },
      { remoteAddress: "127.0.0.1", headers: { forwarded: "for=203.0.113.9" } },
      // An API key is not a metrics credential.
      { remoteAddress: "10.1.2.3", headers: KEY },
    ]) {
      const refused = await app.inject({ method: "GET", url: "/metrics", ...request });
      expect(refused.statusCode, JSON.stringify(request)).toBe(403);
      expect(refused.json().error.code).toBe(ErrorCodes.METRICS_FORBIDDEN);
      expect(refused.json().error.hint).toContain("TETHER_METRICS_TOKEN");
    }
  });

  it("asks for TETHER_METRICS_TOKEN as a bearer token when it is set, from anywhere, loopback included", async () => {
    app = appWith({ TETHER_METRICS_TOKEN: METRICS_TOKEN });
    const missing = await app.inject({ method: "GET", url: "/metrics", remoteAddress: "127.0.0.1" });
    expect([missing.statusCode, missing.json().error.code]).toEqual([401, ErrorCodes.AUTH_MISSING]);
    for (const authorization of ["Bearer key-a", `Bearer ${METRICS_TOKEN}x`, METRICS_TOKEN, "Bearer"]) {
      const wrong = await app.inject({ method: "GET", url: "/metrics", remoteAddress: "10.1.2.3", headers: { authorization } });
      expect([wrong.statusCode, wrong.json().error.code], authorization).toEqual([401, ErrorCodes.AUTH_INVALID]);
    }
    const scraped = await app.inject({ method: "GET", url: "/metrics", remoteAddress: "10.1.2.3", headers: { authorization: `bearer ${METRICS_TOKEN}` } });
    expect(scraped.statusCode).toBe(200);
    expect(scraped.body).toContain("# TYPE tether_executions_total counter");
  });

  it("refuses a TETHER_METRICS_TOKEN too short to be a secret, without echoing it", () => {
    expect(() => loadConfig({ TETHER_METRICS_TOKEN: "short-secret" })).toThrow(
      expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID, message: expect.not.stringContaining("short-secret") }),
    );
  });

  it("answers /readyz 503 with its reasons before the orchestrator listens and reconciles, while /healthz says alive", async () => {
    app = appWith();
    await app.ready();
    expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    const body = res.json();
    expect(body.status).toBe("not_ready");
    expect(body.reasons).toEqual(expect.arrayContaining(["listening: not listening yet", expect.stringMatching(/^reconcile: /)]));
    expect(body.checks.shutdown).toEqual({ ok: true, detail: "running" });
  });

  it("refuses an unknown profile with 400 PROFILE_UNKNOWN naming the configured ones, and launches nothing", async () => {
    const launcher = new RecordingLauncher();
    app = appWith({ TETHER_PROFILES: JSON.stringify({ marked: { env: { PROFILE_MARK: "marked" } } }) }, launcher);
    const res = await app.inject({ method: "POST", url: "/v1/sessions", headers: KEY, payload: { profile: "gpu" } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: ErrorCodes.PROFILE_UNKNOWN, message: "Worker profile 'gpu' is not configured; available: default, marked." });
    expect(res.json().error.hint).toContain("default, marked");
    expect(app.tether.registry.size).toBe(0);
    expect(launcher.requests).toEqual([]);
  });

  it("carries a session's profile to its SessionInfo and to the launcher, with the profile's env", async () => {
    const launcher = new RecordingLauncher();
    app = appWith({ TETHER_PROFILES: JSON.stringify({ default: { env: { PROFILE_MARK: "default" } }, marked: { env: { PROFILE_MARK: "marked" } } }) }, launcher);
    const marked = await app.inject({ method: "POST", url: "/v1/sessions", headers: KEY, payload: { profile: "marked", wait: false } });
    expect(marked.statusCode).toBe(202);
    expect(marked.json().profile).toBe("marked");
    const plain = await app.inject({ method: "POST", url: "/v1/sessions", headers: KEY, payload: { wait: false } });
    expect(plain.json().profile).toBe("default");
    const listed = await app.inject({ method: "GET", url: "/v1/sessions", headers: KEY });
    expect(listed.json().sessions.map((s: { profile: string }) => s.profile).sort()).toEqual(["default", "marked"]);
    await expect.poll(() => launcher.requests.length).toBe(2);
    const byProfile = new Map(launcher.requests.map((request) => [request.profile?.name, request]));
    expect(byProfile.get("marked")?.sessionId).toBe(marked.json().id);
    expect(byProfile.get("marked")?.env.PROFILE_MARK).toBe("marked");
    expect(byProfile.get("default")?.env.PROFILE_MARK).toBe("default");
    expect(byProfile.get("default")?.env.TETHER_INTERRUPT_GRACE_MS).toBe("2000");
  });
});
