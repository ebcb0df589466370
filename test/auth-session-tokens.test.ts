import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo, type SessionTokenInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { expectStatus, type RestClient } from "./helpers/rest.js";
import { StreamClient, attemptUpgrade, streamUrl } from "./helpers/ws.js";

/**
 * The browser flow through the real stack (real workers and kernels): the
 * backend mints a session token with its API key, and the holder of that token
 * can execute code and read and write files of that one session, and nothing else.
 */
describe("session tokens end to end", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;
  let neighbour: SessionInfo;
  let minted: SessionTokenInfo;
  let browser: RestClient;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    [session, neighbour] = await Promise.all([orchestrator.alice.createSession({ chat: "1" }), orchestrator.alice.createSession({ chat: "2" })]);
    minted = expectStatus<SessionTokenInfo>(await orchestrator.alice.request("POST", `/v1/sessions/${session.id}/tokens`, { json: { ttlS: 300 } }), 201, "mint");
    browser = orchestrator.alice.as(minted.token);
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("executes code and reads and writes the session's files", async () => {
    const run = await browser.execute(session.id, { code: "open('from_kernel.txt', 'w').write('written by code')\nprint(6 * 7)" });
    expect(run).toMatchObject({ status: "ok", stdout: "42\n" });
    expect((await browser.getFile(session.id, "from_kernel.txt")).text()).toBe("written by code");
    expect((await browser.putFile(session.id, "upload.txt", "from the browser")).status).toBe(200);
    expect((await browser.listFiles(session.id)).files.map((f) => f.path).sort()).toEqual(["from_kernel.txt", "upload.txt"]);
    expect((await browser.getSession(session.id)).metadata).toEqual({ chat: "1" });
  });

  it("streams an execution over the websocket with the token as ?token=", async () => {
    const client = await StreamClient.open(orchestrator.url, session.id, minted.token, { query: true });
    try {
      const trace = await client.run("s1", "print(open('upload.txt').read())");
      expect(trace.done.status).toBe("ok");
      expect(trace.text("stdout")).toBe("from the browser\n");
    } finally {
      await client.close();
    }
  });

  it("reaches nothing else: another session, the session list, creating, deleting, minting", async () => {
    const refused = async (method: string, path: string, json?: unknown) => {
      const res = await browser.request(method, path, json === undefined ? {} : { json });
      return { path: `${method} ${path}`, status: res.status, code: res.errorCode() };
    };
    const scope = { status: 403, code: ErrorCodes.AUTH_SCOPE };
    for (const [method, path, json] of [
      ["GET", `/v1/sessions/${neighbour.id}`],
      ["POST", `/v1/sessions/${neighbour.id}/execute`, { code: "print(1)" }],
      ["GET", `/v1/sessions/${neighbour.id}/files`],
      ["GET", "/v1/sessions"],
      ["POST", "/v1/sessions", {}],
      ["DELETE", `/v1/sessions/${session.id}`],
      ["POST", `/v1/sessions/${session.id}/tokens`, {}],
    ] as const) {
      expect(await refused(method, path, json)).toEqual({ path: `${method} ${path}`, ...scope });
    }
    expect(await attemptUpgrade(streamUrl(orchestrator.url, neighbour.id, minted.token))).toEqual({ kind: "http", status: 403, code: ErrorCodes.AUTH_SCOPE });
    expect((await orchestrator.alice.getSession(session.id)).id).toBe(session.id);
  });

  it("dies with its session", async () => {
    await orchestrator.alice.deleteSession(session.id);
    const res = await browser.request("GET", `/v1/sessions/${session.id}`);
    expect({ status: res.status, code: res.errorCode() }).toEqual({ status: 401, code: ErrorCodes.AUTH_REVOKED });
  });
});
