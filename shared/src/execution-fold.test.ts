import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExecutionFold, truncateUtf8, utf8Length } from "./execution-fold.js";

describe("the fold of an execution (client SDK and REST)", () => {
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

  it("counts UTF-8 bytes as Buffer does and cuts at a character boundary, lone surrogates included", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.nat(64), (text, max) => {
        expect(utf8Length(text)).toBe(Buffer.byteLength(text));
        const cut = truncateUtf8(text, max);
        expect(text.startsWith(cut)).toBe(true);
        expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(max);
        // The next character would not have fitted.
        if (cut.length < text.length) expect(Buffer.byteLength(text.slice(0, cut.length + (/[\ud800-\udbff][\udc00-\udfff]/.test(text.slice(cut.length, cut.length + 2)) ? 2 : 1)))).toBeGreaterThan(max);
      }),
    );
  });

  it("without limits keeps everything and never says truncated", () => {
    const fold = new ExecutionFold("r1");
    fold.apply({ type: "stream", requestId: "r1", name: "stdout", text: "x".repeat(1_000_000) });
    expect(fold.toResponse()).toMatchObject({ truncated: false });
    expect(fold.toResponse().stdout).toHaveLength(1_000_000);
  });
});
