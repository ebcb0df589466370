import { describe, expect, it } from "vitest";
import { checkWorkspacePath } from "./paths.js";
import { ErrorCodes } from "./errors.js";

describe("checkWorkspacePath", () => {
  it("accepts nested relative paths and normalises a trailing slash", () => {
    expect(checkWorkspacePath("data/plot.png")).toEqual({ ok: true, path: "data/plot.png", segments: ["data", "plot.png"] });
    expect(checkWorkspacePath("dir/")).toMatchObject({ ok: true, path: "dir" });
  });

  it.each(["..", "../etc/passwd", "a/../../b", "a/.."])("refuses %s as escaping the workspace", (path) => {
    expect(checkWorkspacePath(path)).toMatchObject({ ok: false, code: ErrorCodes.PATH_ESCAPES_WORKSPACE });
  });

  it.each(["/etc/passwd", "C:/Windows"])("refuses the absolute path %s", (path) => {
    expect(checkWorkspacePath(path)).toMatchObject({ ok: false, code: ErrorCodes.PATH_ESCAPES_WORKSPACE });
  });

  it.each(["", "a//b", "./a", "a\\b", "a\u0000b", "x".repeat(2000)])("refuses the malformed path %j", (path) => {
    expect(checkWorkspacePath(path)).toMatchObject({ ok: false, code: ErrorCodes.PATH_INVALID });
  });

  it("allows names that merely contain dots", () => {
    expect(checkWorkspacePath("..hidden/file..txt")).toMatchObject({ ok: true });
  });
});
