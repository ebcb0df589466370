import { describe, expect, it } from "vitest";
import { ExecutionFold } from "./execution-fold.js";

describe("the client-side fold of an execution", () => {
  it("applies display updates in place and clear_output(wait) at the next output, like the REST answer", () => {
    const fold = new ExecutionFold("r1");
    fold.apply({ type: "stream", requestId: "r1", name: "stdout", text: "old\n" });
    fold.apply({ type: "display", requestId: "r1", data: { "text/plain": "v1" }, metadata: {}, displayId: "d", update: false });
    fold.apply({ type: "display", requestId: "r1", data: { "text/plain": "v2" }, metadata: {}, displayId: "d", update: true });
    expect(fold.toResponse().outputs).toEqual([{ type: "display_data", data: { "text/plain": "v2" }, metadata: {}, displayId: "d" }]);
    fold.apply({ type: "clear_output", requestId: "r1", wait: true });
    expect(fold.toResponse().stdout).toBe("old\n");
    fold.apply({ type: "stream", requestId: "r1", name: "stdout", text: "new\n" });
    fold.apply({ type: "session_resumed", requestId: "r1", stateLost: true, restoredFiles: 2 });
    fold.apply({ type: "done", requestId: "r1", status: "ok", executionCount: 3, durationMs: 5, kernelRestarted: false, stateLost: false });
    expect(fold.toResponse()).toEqual({ requestId: "r1", status: "ok", executionCount: 3, stdout: "new\n", stderr: "", outputs: [], truncated: false, kernelRestarted: false, stateLost: true, durationMs: 5, resumed: true });
  });
});
