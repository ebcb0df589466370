import { expect } from "vitest";
import type { SessionInfo } from "@tether/shared";
import type { TestOrchestrator } from "./orchestrator.js";

/** Runs `code` in the session (with `json` and `os` imported) and returns the JSON its last stdout line printed. */
export async function probe<T>(orchestrator: TestOrchestrator, sessionId: string, code: string): Promise<T> {
  const res = await orchestrator.alice.execute(sessionId, { code: `import json, os\n${code}` });
  expect(res.status, JSON.stringify(res.error ?? res.failure)).toBe("ok");
  const last = res.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as T;
}

/** Polls GET /v1/sessions/:id (it has no push) until `done` holds. */
export async function waitForSession(orchestrator: TestOrchestrator, id: string, done: (info: SessionInfo) => boolean, timeoutMs = 30_000): Promise<SessionInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await orchestrator.alice.getSession(id);
    if (done(info)) return info;
    if (Date.now() > deadline) throw new Error(`Session ${id} did not get there; last: ${JSON.stringify(info)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
