import { describe, expect, it } from "vitest";
import { MessageCodec } from "./codec.js";
import { ClientMessage, ServerMessage } from "./client-protocol.js";
import { OrchestratorMessage, WorkerMessage } from "./worker-protocol.js";
import { ErrorCodes } from "./errors.js";

const clientCodec = new MessageCodec(ClientMessage);

describe("MessageCodec", () => {
  it("accepts a well-formed execute request", () => {
    const result = clientCodec.decode(JSON.stringify({ type: "execute", requestId: "r1", code: "1+1" }));
    expect(result).toEqual({ ok: true, value: { type: "execute", requestId: "r1", code: "1+1" } });
  });

  it("reports malformed JSON with its own code", () => {
    const result = clientCodec.decode("{not json");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.code).toBe(ErrorCodes.PROTOCOL_MALFORMED_JSON);
  });

  it("reports an unknown type and lists the known ones", () => {
    const result = clientCodec.decode(JSON.stringify({ type: "evaluate", requestId: "r2" }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe(ErrorCodes.PROTOCOL_UNKNOWN_TYPE);
      expect(result.requestId).toBe("r2");
      expect(result.message).toContain("execute");
    }
  });

  it("reports a known type with a missing field as invalid, naming the field", () => {
    const result = clientCodec.decode(JSON.stringify({ type: "execute", requestId: "r3" }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe(ErrorCodes.PROTOCOL_INVALID_MESSAGE);
      expect(result.requestId).toBe("r3");
      expect(result.message).toContain("code");
    }
  });

  it("refuses a non-object frame as an unknown type", () => {
    for (const frame of ["42", "null", '"execute"', "[]"]) {
      const result = clientCodec.decode(frame);
      expect(result.ok, frame).toBe(false);
      if (!result.ok) expect(result.code).toBe(ErrorCodes.PROTOCOL_UNKNOWN_TYPE);
    }
  });

  it("refuses an empty requestId", () => {
    const result = clientCodec.decode(JSON.stringify({ type: "input_reply", requestId: "", value: "x" }));
    expect(result.ok).toBe(false);
  });

  it("refuses a timeout that is not a positive integer", () => {
    for (const timeoutMs of [0, -5, 1.5, "100"]) {
      const result = clientCodec.validate({ type: "execute", requestId: "r", code: "", timeoutMs });
      expect(result.ok, String(timeoutMs)).toBe(false);
    }
  });
});

describe("worker protocol schemas", () => {
  const fromWorker = new MessageCodec(WorkerMessage);
  const toWorker = new MessageCodec(OrchestratorMessage);

  it("accepts every execution event the worker emits", () => {
    const events = [
      { type: "stream", requestId: "r", name: "stdout", text: "hi\n" },
      { type: "display", requestId: "r", data: { "image/png": "iVBOR" }, metadata: {}, update: false, displayId: "d1" },
      { type: "result", requestId: "r", executionCount: 3, data: { "text/plain": "2" }, metadata: {} },
      { type: "error", requestId: "r", name: "ZeroDivisionError", value: "division by zero", traceback: ["line"] },
      { type: "clear_output", requestId: "r", wait: true },
      { type: "input_request", requestId: "r", prompt: "name? ", password: false },
      { type: "status", requestId: null, state: "restarting" },
      { type: "kernel_died", requestId: "r", reason: "exit code 1", restarted: false },
      { type: "done", requestId: "r", status: "kernel_died", executionCount: null, durationMs: 12, kernelRestarted: true, stateLost: true, failure: { code: "X", message: "y" } },
    ];
    for (const event of events) expect(fromWorker.validate(event).ok, event.type).toBe(true);
  });

  it("refuses a stream event with an unknown stream name", () => {
    expect(fromWorker.validate({ type: "stream", requestId: "r", name: "stdlog", text: "" }).ok).toBe(false);
  });

  it("refuses a done event with a status outside the union", () => {
    const done = { type: "done", requestId: "r", status: "finished", executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false };
    expect(fromWorker.validate(done).ok).toBe(false);
  });

  it("distinguishes successful and failed call results", () => {
    expect(fromWorker.validate({ type: "call_result", callId: "c", ok: true, value: { size: 3 } }).ok).toBe(true);
    expect(fromWorker.validate({ type: "call_result", callId: "c", ok: false, error: { code: "X", message: "m" } }).ok).toBe(true);
    expect(fromWorker.validate({ type: "call_result", callId: "c", ok: false }).ok).toBe(false);
  });

  it("requires a join token in hello", () => {
    const hello = { type: "hello", protocolVersion: "1.0", agentVersion: "0.1.0", capabilities: [] };
    expect(fromWorker.validate(hello).ok).toBe(false);
    expect(fromWorker.validate({ ...hello, token: "t" }).ok).toBe(true);
  });

  it("accepts each stdin mode on execute and refuses lines without an array", () => {
    const execute = { type: "execute", requestId: "r", code: "input()", timeoutMs: 1000 };
    expect(toWorker.validate({ ...execute, stdin: { mode: "none" } }).ok).toBe(true);
    expect(toWorker.validate({ ...execute, stdin: { mode: "interactive" } }).ok).toBe(true);
    expect(toWorker.validate({ ...execute, stdin: { mode: "lines", lines: ["a"] } }).ok).toBe(true);
    expect(toWorker.validate({ ...execute, stdin: { mode: "lines" } }).ok).toBe(false);
  });

  it("refuses a stream id of zero", () => {
    expect(toWorker.validate({ type: "file_download", callId: "c", path: "a", streamId: 0 }).ok).toBe(false);
  });
});

describe("server messages", () => {
  it("accept a protocol_error without a request", () => {
    const codec = new MessageCodec(ServerMessage);
    expect(codec.validate({ type: "protocol_error", requestId: null, code: "C", message: "m" }).ok).toBe(true);
  });
});

describe("MessageCodec with a type that has several shapes", () => {
  it("accepts either shape of call_result and names the field when both fail", () => {
    const codec = new MessageCodec(WorkerMessage);
    expect(codec.validate({ type: "call_result", callId: "c", ok: true, value: 1 }).ok).toBe(true);
    const bad = codec.validate({ type: "call_result", ok: true, value: 1 });
    expect(bad).toMatchObject({ ok: false, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE });
    if (!bad.ok) expect(bad.message).toContain("callId");
  });
});
