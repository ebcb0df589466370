import { describe, expect, it } from "vitest";
import { translateIopub } from "./output-translator.js";

const msg = (msg_type: string, content: unknown) => ({ header: { msg_type }, content });

describe("translateIopub", () => {
  it("strips ANSI colour codes from tracebacks and renames ename/evalue", () => {
    const event = translateIopub(
      msg("error", { ename: "ZeroDivisionError", evalue: "division by zero", traceback: ["\u001b[0;31mZeroDivisionError\u001b[0m: division by zero"] }),
      "r1",
    );
    expect(event).toEqual({ type: "error", requestId: "r1", name: "ZeroDivisionError", value: "division by zero", traceback: ["ZeroDivisionError: division by zero"] });
  });

  it("turns display_data and update_display_data into display events with the display id", () => {
    const transient = { display_id: "abc" };
    expect(translateIopub(msg("display_data", { data: { "text/plain": "a" }, metadata: {}, transient }), "r1")).toEqual({
      type: "display",
      requestId: "r1",
      data: { "text/plain": "a" },
      metadata: {},
      displayId: "abc",
      update: false,
    });
    expect(translateIopub(msg("update_display_data", { data: { "text/plain": "b" }, metadata: {}, transient }), "r1")).toMatchObject({
      type: "display",
      displayId: "abc",
      update: true,
    });
    expect(translateIopub(msg("display_data", { data: {}, metadata: {} }), "r1")).not.toHaveProperty("displayId");
  });

  it("passes clear_output's wait flag", () => {
    expect(translateIopub(msg("clear_output", { wait: true }), "r1")).toEqual({ type: "clear_output", requestId: "r1", wait: true });
    expect(translateIopub(msg("clear_output", { wait: false }), "r1")).toEqual({ type: "clear_output", requestId: "r1", wait: false });
  });

  it("translates stream and execute_result, and ignores execute_input", () => {
    expect(translateIopub(msg("stream", { name: "stderr", text: "warn\n" }), "r1")).toEqual({ type: "stream", requestId: "r1", name: "stderr", text: "warn\n" });
    expect(translateIopub(msg("execute_result", { execution_count: 3, data: { "text/plain": "2" }, metadata: {} }), "r1")).toEqual({
      type: "result",
      requestId: "r1",
      executionCount: 3,
      data: { "text/plain": "2" },
      metadata: {},
    });
    expect(translateIopub(msg("execute_input", { code: "1+1" }), "r1")).toBeUndefined();
  });
});
