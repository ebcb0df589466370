import { describe, expect, it } from "vitest";
import type { ExecuteResponse } from "@tether/shared";
import { htmlToText, mimeTypeOf, renderMimeBundle } from "./common/rich-output.js";
import { stripDataPrefix, toWorkspacePath } from "./common/workspace-paths.js";
import { wantsLegacyShape } from "./dynamic-sessions/ds-context.js";
import { listDirectory } from "./dynamic-sessions/ds-files.js";
import { legacyResult, pythonReprToJson } from "./dynamic-sessions/ds-results.js";
import { shellResource } from "./dynamic-sessions/ds-shell.js";
import { parseMultipart } from "./dynamic-sessions/multipart.js";
import { executionToToolResult } from "./mcp/tool-result.js";
import { assertOriginAllowed } from "./mcp/origin-check.js";

function response(fields: Partial<ExecuteResponse>): ExecuteResponse {
  return { requestId: "r", status: "ok", executionCount: 1, stdout: "", stderr: "", outputs: [], truncated: false, kernelRestarted: false, stateLost: false, durationMs: 3.4, resumed: false, ...fields };
}

describe("rich outputs for models", () => {
  it("prefers a raster image, then text/plain over HTML (a DataFrame), and turns HTML alone into text", () => {
    expect(renderMimeBundle({ "image/png": "iVBO\nRw==\n", "text/plain": "<Figure>" })).toEqual({ kind: "image", mimeType: "image/png", base64: "iVBORw==" });
    expect(renderMimeBundle({ "text/html": "<table>...</table>", "text/plain": "   a\n0  1" })).toEqual({ kind: "text", text: "   a\n0  1" });
    expect(renderMimeBundle({ "image/svg+xml": "<svg/>" })).toEqual({ kind: "text", text: "[image/svg+xml]\n<svg/>" });
    expect(renderMimeBundle({ "application/json": { a: 1 } })).toEqual({ kind: "text", text: '{\n  "a": 1\n}' });
    expect(renderMimeBundle({})).toBeUndefined();
  });

  it("strips HTML sensibly: scripts and styles gone, cells tab-separated, rows and blocks on lines, entities decoded", () => {
    const html = '<style>td{}</style><p>Hi &amp; <b>bye</b></p><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>&lt;2&gt;</td></tr></table><script>alert(1)</script>x&#39;s &#x263A;';
    expect(htmlToText(html)).toBe("Hi & bye\na\tb\n1\t<2>\n\nx's ☺");
  });

  it("guesses content types from names", () => {
    expect(mimeTypeOf("a/b.CSV")).toBe("text/csv");
    expect(mimeTypeOf("plot.png")).toBe("image/png");
    expect(mimeTypeOf("dir.d/noext")).toBe("application/octet-stream");
  });
});

describe("/mnt/data names", () => {
  it("maps /mnt/data/ and ./ to the workspace and still refuses escapes", () => {
    expect(stripDataPrefix("/mnt/data/x/y.csv")).toBe("x/y.csv");
    expect(stripDataPrefix("/mnt/data")).toBe("");
    expect(toWorkspacePath("./a.txt")).toBe("a.txt");
    expect(() => toWorkspacePath("/mnt/data/../etc/passwd")).toThrow(/leaves the session workspace/);
    expect(() => toWorkspacePath("/etc/passwd")).toThrow(/absolute/);
  });
});

describe("dynamic sessions shapes", () => {
  it("turns Python reprs into the JSON values clients expect, and leaves others as text", () => {
    expect(pythonReprToJson("2")).toBe(2);
    expect(pythonReprToJson("-1.5e3")).toBe(-1500);
    expect(pythonReprToJson("True")).toBe(true);
    expect(pythonReprToJson("'it\\'s\\n\\x41\\u263a'")).toBe("it's\nA☺");
    expect(pythonReprToJson('"double"')).toBe("double");
    expect(pythonReprToJson("['a',\n 'b']")).toBe("['a',\n 'b']");
    expect(pythonReprToJson("123456789012345678901234567890")).toBe("123456789012345678901234567890");
    expect(pythonReprToJson("nan")).toBe("nan");
  });

  it("reports a plot as {type, format, base64_data} and the last expression otherwise", () => {
    expect(legacyResult(response({ outputs: [{ type: "display_data", data: { "image/png": "QUJD" }, metadata: {} }] }))).toEqual({ type: "image", format: "png", base64_data: "QUJD" });
    expect(legacyResult(response({ outputs: [{ type: "execute_result", data: { "text/plain": "42" }, metadata: {} }] }))).toBe(42);
    expect(legacyResult(response({}))).toBe("");
  });

  it("picks the shape of GET files from the api-version", () => {
    expect(wantsLegacyShape(undefined)).toBe(true);
    expect(wantsLegacyShape("2024-02-02-preview")).toBe(true);
    expect(wantsLegacyShape("2024-10-02-preview")).toBe(false);
    expect(wantsLegacyShape("2025-10-02-preview")).toBe(false);
  });

  it("lists a directory with its subdirectories, or every file below it", () => {
    const files = [
      { path: "top.txt", size: 1, modifiedAt: "2025-01-01T00:00:00.000Z" },
      { path: "d/a.txt", size: 2, modifiedAt: "2025-01-02T00:00:00.000Z" },
      { path: "d/e/b.txt", size: 3, modifiedAt: "2025-01-03T00:00:00.000Z" },
    ];
    expect(listDirectory(files, "", false).map((entry) => [entry.name, entry.type])).toEqual([["top.txt", "File"], ["d", "Directory"]]);
    expect(listDirectory(files, "d", false).map((entry) => [entry.name, entry.directory, entry.type])).toEqual([["a.txt", "d", "File"], ["e", "d", "Directory"]]);
    expect(listDirectory(files, "d", true).map((entry) => `${entry.directory}/${entry.name}`)).toEqual(["d/a.txt", "d/e/b.txt"]);
  });

  it("reports a shell command's exit code as its status, and a timeout as 124", () => {
    expect(shellResource(response({ stdout: "hi\n", outputs: [{ type: "execute_result", data: { "text/plain": "0" }, metadata: {} }] }), undefined)).toMatchObject({ status: "0", result: { stdout: "hi\n" } });
    expect(shellResource(response({ status: "timeout", failure: { code: "TETHER_ERR_EXEC_TIMEOUT", message: "too slow" } }), 3)).toMatchObject({ status: "124", result: { stderr: "too" } });
  });
});

describe("multipart bodies", () => {
  const body = (boundary: string, headers: string, data: string): Buffer => Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n${data}\r\n--${boundary}--\r\n`);

  it("reads the part from the boundary in the Content-Type, quoted or not, with headers in any order", () => {
    const parts = parseMultipart(body("xyz", 'Content-Type: application/octet-stream\r\nContent-Disposition: form-data; name="file"; filename="/mnt/data/a b.txt"', "line1\r\nline2"), 'multipart/form-data; boundary="xyz"');
    expect(parts).toEqual([{ name: "file", filename: "/mnt/data/a b.txt", contentType: "application/octet-stream", data: Buffer.from("line1\r\nline2") }]);
  });

  it("finds the boundary in the body when the Content-Type lies (application/json)", () => {
    const parts = parseMultipart(body("678fd42f", 'Content-Disposition: form-data; name="file"; filename="x.txt"', "hello"), "application/json");
    expect(parts[0]?.data.toString()).toBe("hello");
  });

  it("refuses a body that is not multipart", () => {
    expect(() => parseMultipart(Buffer.from('{"a":1}'), "application/json")).toThrow(/not multipart/);
    expect(() => parseMultipart(Buffer.from("--abc\r\nContent-Disposition: form-data\r\n\r\nno end"), undefined)).toThrow(/not closed/);
  });
});

describe("MCP pieces", () => {
  it("makes a tool result of an execution: text, images, traceback, isError only when it failed", () => {
    const ok = executionToToolResult(response({ stdout: "out\n", outputs: [{ type: "display_data", data: { "image/png": "QUJD" }, metadata: {} }, { type: "execute_result", data: { "text/plain": "3" }, metadata: {} }] }));
    expect(ok).toEqual({ content: [{ type: "text", text: "out\n" }, { type: "image", data: "QUJD", mimeType: "image/png" }, { type: "text", text: "Result:\n3" }] });
    const failed = executionToToolResult(response({ status: "error", error: { name: "E", value: "v", traceback: ["\u001b[31mE\u001b[0m: v"] } }));
    expect(failed).toEqual({ content: [{ type: "text", text: "E: v" }], isError: true });
    expect(executionToToolResult(response({ resumed: true, stateLost: true })).content.at(-1)).toMatchObject({ text: expect.stringContaining("variables and imports from earlier calls are gone") });
  });

  it("allows no Origin, loopback on the serving port, the public URL and listed origins; refuses the rest", () => {
    const policy = { allowed: ["https://chat.example.com"], publicUrl: "wss://tether.example.com" };
    expect(() => assertOriginAllowed(undefined, 8080, policy)).not.toThrow();
    expect(() => assertOriginAllowed("http://localhost:8080", 8080, policy)).not.toThrow();
    expect(() => assertOriginAllowed("https://tether.example.com", 8080, policy)).not.toThrow();
    expect(() => assertOriginAllowed("https://chat.example.com", 8080, policy)).not.toThrow();
    expect(() => assertOriginAllowed("http://localhost:9999", 8080, policy)).toThrow(/may not call \/mcp/);
    expect(() => assertOriginAllowed("http://evil.example:8080", 8080, policy)).toThrow(/may not call \/mcp/);
    expect(() => assertOriginAllowed("null", 8080, policy)).toThrow(/may not call \/mcp/);
  });
});
