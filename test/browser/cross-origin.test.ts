import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tether, type Session } from "@tether/client";
import type { SessionTokenInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "../helpers/orchestrator.js";
import { attemptUpgrade, streamUrl } from "../helpers/ws.js";
import { launchBrowser, type TestBrowser } from "./browser.js";
import { serveStatic, type StaticServer } from "./static-server.js";

const sdkBundle = new URL("../../client/dist/browser/tether-client.js", import.meta.url);
const chatPage = new URL("./fixtures/chat-app.html", import.meta.url);

interface PageOutcome {
  ok: boolean;
  status?: string;
  stdout?: string;
  chunks?: string[];
  download?: string;
  name?: string;
  code?: string;
}

/**
 * The browser flow across origins: a chat app's page, served from its own
 * loopback port, gets a session token from its "backend" (this test, with the
 * API key) and calls Tether's REST API and stream with the SDK's browser
 * bundle. The orchestrator allows that origin (TETHER_CORS_ORIGINS) and no other.
 */
describe("a page on another origin with a session token", () => {
  let allowed: StaticServer;
  let foreign: StaticServer;
  let orchestrator: TestOrchestrator;
  let browser: TestBrowser;
  let session: Session;
  let minted: SessionTokenInfo;

  beforeAll(async () => {
    const files = {
      "/": { contentType: "text/html; charset=utf-8", body: await readFile(chatPage) },
      "/tether-client.js": { contentType: "text/javascript; charset=utf-8", body: await readFile(sdkBundle) },
    };
    [allowed, foreign, browser] = await Promise.all([serveStatic(files), serveStatic(files), launchBrowser()]);
    orchestrator = await startTestOrchestrator({ TETHER_CORS_ORIGINS: allowed.origin });
    // The backend: holds the API key, creates the session, mints a token for the page.
    session = await new Tether({ baseUrl: orchestrator.url, apiKey: orchestrator.keys.alice }).createSession();
    minted = await session.createToken({ ttlS: 300 });
  });

  afterAll(async () => {
    session?.close();
    await browser?.close();
    await orchestrator?.close();
    await allowed?.close();
    await foreign?.close();
  });

  async function openChatApp(origin: string) {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    await page.locator('body[data-ready="yes"]').waitFor();
    return page;
  }

  it("runs code, streams its output and moves files from an allowed origin", async () => {
    const page = await openChatApp(allowed.origin);
    const outcome: PageOutcome = await page.evaluate(
      ({ baseUrl, token, sessionId }) => Reflect.get(globalThis, "chatApp").useSession(baseUrl, token, sessionId),
      { baseUrl: orchestrator.url, token: minted.token, sessionId: session.id },
    );
    expect(outcome).toEqual({ ok: true, status: "ready", stdout: "uploaded cross-origin\n", chunks: ["uploaded cross-origin\n"], download: "uploaded cross-origin" });
    const stream: { hello: boolean } = await page.evaluate((url) => Reflect.get(globalThis, "chatApp").rawStream(url), streamUrl(orchestrator.url, session.id, minted.token));
    expect(stream).toEqual({ hello: true });
    await browser.screenshot(page, "08-cross-origin-allowed");
    await page.close();
  });

  it("is refused from an origin that is not allowed: REST by CORS, the stream by the Origin check", async () => {
    const page = await openChatApp(foreign.origin);
    const outcome: PageOutcome = await page.evaluate(
      ({ baseUrl, token, sessionId }) => Reflect.get(globalThis, "chatApp").useSession(baseUrl, token, sessionId),
      { baseUrl: orchestrator.url, token: minted.token, sessionId: session.id },
    );
    // The browser hides a CORS refusal's answer: the SDK sees a network failure (its hint names TETHER_CORS_ORIGINS).
    expect(outcome).toEqual({ ok: false, name: "ConnectionError", code: "TETHER_ERR_CLIENT_NETWORK" });
    const stream: { hello: boolean; closeCode?: number } = await page.evaluate((url) => Reflect.get(globalThis, "chatApp").rawStream(url), streamUrl(orchestrator.url, session.id, minted.token));
    expect(stream).toEqual({ hello: false, closeCode: 1006 });
    // What the browser was told, seen from outside it: the upgrade is refused for its Origin, before the token counts.
    const refused = await attemptUpgrade(streamUrl(orchestrator.url, session.id, minted.token), { origin: foreign.origin });
    expect(refused).toMatchObject({ kind: "http", status: 403, code: "TETHER_ERR_REQUEST_ORIGIN_NOT_ALLOWED" });
    await browser.screenshot(page, "09-cross-origin-refused");
    await page.close();
  });
});
