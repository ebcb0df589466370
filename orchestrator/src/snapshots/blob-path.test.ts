import { describe, expect, it } from "vitest";
import { blobPathOf } from "./azure-blob-snapshot-store.js";

describe("blob names of workspace paths", () => {
  it("keep ordinary paths as they are", () => {
    expect(blobPathOf("data/raw/blob.bin")).toBe("data/raw/blob.bin");
  });

  it("escape a trailing dot of any segment, and '%' so that no two paths share a name", () => {
    expect(blobPathOf("dir./file.")).toBe("dir%2E/file%2E");
    expect(blobPathOf("a%2E")).toBe("a%252E");
    expect(blobPathOf("a.")).not.toBe(blobPathOf("a%2E"));
  });
});
