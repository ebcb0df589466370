import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ErrorCodes, httpStatusFor } from "./errors.js";

const apiDoc = readFileSync(fileURLToPath(new URL("../../docs/api.md", import.meta.url)), "utf8");

/** docs/api.md is the contract clients read: every error code has its row, with the status the code really has. */
describe("docs/api.md", () => {
  it("has a row for every error code, with its HTTP status", () => {
    const rows = new Map<string, string>();
    for (const line of apiDoc.split("\n")) {
      const match = /^\| `(TETHER_ERR_[A-Z_]+)` \| ([^|]+) \|/.exec(line);
      if (match?.[1] && match[2]) rows.set(match[1], match[2].trim());
    }
    const missing = Object.values(ErrorCodes).filter((code) => !rows.has(code));
    expect(missing).toEqual([]);
    const wrongStatus = Object.values(ErrorCodes).flatMap((code) => {
      const documented = rows.get(code);
      const status = httpStatusFor(code);
      return documented === "–" || documented === String(status) ? [] : [`${code}: documented ${documented}, is ${status}`];
    });
    expect(wrongStatus).toEqual([]);
  });
});
