import { describe, expect, it } from "vitest";
import { stripAnsi } from "./ansi.js";
import { decodeBinaryFrame, encodeBinaryFrame } from "./binary-frame.js";
import { isCompatibleProtocolVersion, parseProtocolVersion, PROTOCOL_VERSION } from "./version.js";
import { ErrorCodes, TetherError, isErrorCode } from "./errors.js";

describe("stripAnsi", () => {
  it("removes colour codes from an IPython traceback line", () => {
    const line = "\u001b[0;31mZeroDivisionError\u001b[0m: division by zero";
    expect(stripAnsi(line)).toBe("ZeroDivisionError: division by zero");
  });

  it("removes OSC hyperlinks and leaves plain text untouched", () => {
    expect(stripAnsi("\u001b]8;;file:///x.py\u0007x.py\u001b]8;;\u0007")).toBe("x.py");
    expect(stripAnsi("plain [0;31m text")).toBe("plain [0;31m text");
  });
});

describe("binary frames", () => {
  it("round-trip the stream id and payload", () => {
    const payload = new Uint8Array([1, 2, 3, 255]);
    const decoded = decodeBinaryFrame(encodeBinaryFrame(0xdeadbeef, payload));
    expect(decoded?.streamId).toBe(0xdeadbeef);
    expect([...(decoded?.payload ?? [])]).toEqual([1, 2, 3, 255]);
  });

  it("decode a frame that is a view into a larger buffer", () => {
    const frame = encodeBinaryFrame(7, new Uint8Array([9]));
    const padded = new Uint8Array(frame.byteLength + 3);
    padded.set(frame, 3);
    expect(decodeBinaryFrame(padded.subarray(3))).toMatchObject({ streamId: 7 });
  });

  it("refuse a frame shorter than its header", () => {
    expect(decodeBinaryFrame(new Uint8Array([1, 2]))).toBeUndefined();
  });
});

describe("protocol versions", () => {
  it("accept our own version and a newer minor, refuse another major", () => {
    expect(isCompatibleProtocolVersion(PROTOCOL_VERSION)).toBe(true);
    expect(isCompatibleProtocolVersion("1.7")).toBe(true);
    expect(isCompatibleProtocolVersion("2.0")).toBe(false);
    expect(isCompatibleProtocolVersion("1.0", "1.1")).toBe(false);
    expect(isCompatibleProtocolVersion("one")).toBe(false);
    expect(parseProtocolVersion("1.2.3")).toBeUndefined();
  });
});

describe("TetherError", () => {
  it("carries a stable code, a status and a hint into its body", () => {
    const error = new TetherError(ErrorCodes.SESSION_NOT_FOUND, "No session s1.", { statusCode: 404, hint: "List sessions." });
    expect(error.statusCode).toBe(404);
    expect(error.toBody()).toEqual({ error: { code: "TETHER_ERR_SESSION_NOT_FOUND", message: "No session s1.", hint: "List sessions." } });
    expect(isErrorCode(error.code)).toBe(true);
    expect(isErrorCode("TETHER_ERR_MADE_UP")).toBe(false);
  });

  it("uses TETHER_ERR_<AREA>_<WHAT> for every code", () => {
    for (const code of Object.values(ErrorCodes)) expect(code).toMatch(/^TETHER_ERR_[A-Z]+(_[A-Z]+)*$/);
  });
});
