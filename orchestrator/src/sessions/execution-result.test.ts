import { describe, expect, it } from "vitest";
import type { ExecutionEvent } from "@tether/shared";
import { truncateUtf8 } from "@tether/shared";
import { ExecutionResultFold } from "./execution-result.js";

const R = "r1";
const stdout = (text: string): ExecutionEvent => ({ type: "stream", requestId: R, name: "stdout", text });
const stderr = (text: string): ExecutionEvent => ({ type: "stream", requestId: R, name: "stderr", text });
const display = (text: string, displayId?: string, update = false): ExecutionEvent => ({
  type: "display",
  requestId: R,
  data: { "text/plain": text },
  metadata: {},
  update,
  ...(displayId ? { displayId } : {}),
});
const clear = (wait: boolean): ExecutionEvent => ({ type: "clear_output", requestId: R, wait });
const done: ExecutionEvent = { type: "done", requestId: R, status: "ok", executionCount: 3, durationMs: 12, kernelRestarted: false, stateLost: false };

function fold(events: ExecutionEvent[], maxOutputBytes = 1024) {
  const f = new ExecutionResultFold(R, maxOutputBytes);
  for (const event of events) f.apply(event);
  return f.toResponse();
}

describe("ExecutionResultFold", () => {
  it("concatenates stdout and stderr in order and takes status from done", () => {
    const response = fold([stdout("a"), stderr("x"), stdout("b\n"), done]);
    expect(response).toMatchObject({ requestId: R, status: "ok", executionCount: 3, stdout: "ab\n", stderr: "x", truncated: false, durationMs: 12 });
  });

  it("keeps display_data and execute_result in order", () => {
    const response = fold([
      display("one"),
      { type: "result", requestId: R, executionCount: 3, data: { "text/plain": "2" }, metadata: {} },
      done,
    ]);
    expect(response.outputs.map((o) => o.type)).toEqual(["display_data", "execute_result"]);
  });

  it("applies update_display_data to every output with that display id, in place", () => {
    const response = fold([display("v1", "d1"), display("other"), display("v1-bis", "d1"), display("v2", "d1", true), display("ghost", "nope", true), done]);
    expect(response.outputs.map((o) => o.data["text/plain"])).toEqual(["v2", "other", "v2"]);
    expect(response.outputs[0]?.displayId).toBe("d1");
  });

  it("clears everything at once on clear_output", () => {
    const response = fold([stdout("old"), display("old"), clear(false), stdout("new"), done]);
    expect(response.stdout).toBe("new");
    expect(response.outputs).toEqual([]);
  });

  it("clears on the next output after clear_output(wait=True), not before", () => {
    const events = [stdout("frame 1"), display("plot 1"), clear(true)];
    expect(fold([...events, done])).toMatchObject({ stdout: "frame 1", outputs: [{ data: { "text/plain": "plot 1" } }] });
    expect(fold([...events, display("plot 2"), done])).toMatchObject({ stdout: "", outputs: [{ data: { "text/plain": "plot 2" } }] });
    expect(fold([...events, stdout("frame 2"), done])).toMatchObject({ stdout: "frame 2", outputs: [] });
  });

  it("does not count a display update as the output that triggers a pending clear", () => {
    const response = fold([display("p", "d"), clear(true), display("p2", "d", true), done]);
    expect(response.outputs.map((o) => o.data["text/plain"])).toEqual(["p2"]);
  });

  it("records the error with its traceback", () => {
    const response = fold([
      { type: "error", requestId: R, name: "ZeroDivisionError", value: "division by zero", traceback: ["line 1", "ZeroDivisionError"] },
      { ...done, status: "error" } as ExecutionEvent,
    ]);
    expect(response.status).toBe("error");
    expect(response.error).toEqual({ name: "ZeroDivisionError", value: "division by zero", traceback: ["line 1", "ZeroDivisionError"] });
  });

  it("truncates each stream past the byte cap and says so", () => {
    const response = fold([stdout("0123456789"), stdout("abcdef"), stderr("short"), done], 12);
    expect(response.stdout).toBe("0123456789ab");
    expect(response.stderr).toBe("short");
    expect(response.truncated).toBe(true);
  });

  it("never splits a multi-byte character when truncating", () => {
    expect(truncateUtf8("héllo", 2)).toBe("h");
    expect(truncateUtf8("héllo", 3)).toBe("hé");
    expect(truncateUtf8("😀x", 3)).toBe("");
    const response = fold([stdout("ééé"), done], 5);
    expect(response.stdout).toBe("éé");
    expect(Buffer.byteLength(response.stdout)).toBeLessThanOrEqual(5);
  });

  it("copies failure, kernelRestarted and stateLost from done", () => {
    const response = fold([
      { type: "done", requestId: R, status: "kernel_died", executionCount: null, durationMs: 5, kernelRestarted: true, stateLost: true, failure: { code: "X", message: "m" } },
    ]);
    expect(response).toMatchObject({ status: "kernel_died", kernelRestarted: true, stateLost: true, failure: { code: "X", message: "m" } });
  });
});
