import { mkdtemp, mkdir, rm, symlink, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { Workspace } from "./workspace-files.js";

let base: string;
let workspace: Workspace;

beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), "tether-ws-test-"));
  await mkdir(path.join(base, "ws", "sub"), { recursive: true });
  await mkdir(path.join(base, "outside"));
  await writeFile(path.join(base, "outside", "secret.txt"), "secret");
  await writeFile(path.join(base, "ws", "sub", "data.csv"), "a,b\n");
  workspace = await Workspace.open(path.join(base, "ws"));
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function codeOf(work: Promise<unknown>): Promise<string | undefined> {
  try {
    await work;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe("workspace path safety", () => {
  it("resolves a plain relative path inside the workspace", async () => {
    expect(await workspace.resolve("sub/data.csv")).toBe(path.join(workspace.root, "sub", "data.csv"));
    expect(await workspace.resolve("new/dir/file.txt")).toBe(path.join(workspace.root, "new", "dir", "file.txt"));
  });

  it("refuses '..' and absolute paths", async () => {
    expect(await codeOf(workspace.resolve("../outside/secret.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await codeOf(workspace.resolve("/etc/passwd"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await codeOf(workspace.resolve("a//b"))).toBe(ErrorCodes.PATH_INVALID);
  });

  it("refuses a path through an in-workspace symlink to a directory outside", async () => {
    await symlink(path.join(base, "outside"), path.join(workspace.root, "link"));
    expect(await codeOf(workspace.resolve("link/secret.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await codeOf(workspace.openRead("link/secret.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    // Not even a new file may be created through it.
    expect(await codeOf(workspace.openWrite("link/planted.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await codeOf(workspace.delete("link/secret.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await readFile(path.join(base, "outside", "secret.txt"), "utf8")).toBe("secret");
  });

  it("refuses a symlinked file that points outside, and a dangling symlink", async () => {
    await symlink(path.join(base, "outside", "secret.txt"), path.join(workspace.root, "secret-link"));
    await symlink(path.join(base, "outside", "missing"), path.join(workspace.root, "dangling"));
    expect(await codeOf(workspace.openRead("secret-link"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await codeOf(workspace.openWrite("dangling/x.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
  });

  it("opens the final file with O_NOFOLLOW, so even an in-workspace file symlink is refused", async () => {
    await symlink("sub/data.csv", path.join(workspace.root, "alias"));
    expect(await codeOf(workspace.openRead("alias"))).toBe(ErrorCodes.PATH_INVALID);
  });

  it("reports a missing file and a directory with their own codes", async () => {
    expect(await codeOf(workspace.openRead("nope.txt"))).toBe(ErrorCodes.FILE_NOT_FOUND);
    expect(await codeOf(workspace.openRead("sub"))).toBe(ErrorCodes.FILE_IS_DIRECTORY);
    expect(await codeOf(workspace.delete("sub"))).toBe(ErrorCodes.FILE_IS_DIRECTORY);
  });
});

describe("workspace files", () => {
  it("lists regular files recursively, skipping symlinks, and caps the list", async () => {
    await writeFile(path.join(workspace.root, "top.txt"), "12345");
    await symlink(path.join(base, "outside"), path.join(workspace.root, "link"));
    await symlink("top.txt", path.join(workspace.root, "alias"));
    const listed = await workspace.list();
    expect(listed.files.map((f) => f.path)).toEqual(["top.txt", "sub/data.csv"]);
    expect(listed.files[0]?.size).toBe(5);
    expect(listed.truncated).toBe(false);
    const capped = await workspace.list(1);
    expect(capped.files).toHaveLength(1);
    expect(capped.truncated).toBe(true);
  });

  it("writes an upload to a temp file and renames it into place on commit", async () => {
    const target = await workspace.openWrite("deep/er/out.txt");
    await target.handle.write(Buffer.from("payload"));
    expect((await workspace.list()).files.map((f) => f.path)).not.toContain("deep/er/out.txt");
    await target.commit();
    expect(await readFile(path.join(workspace.root, "deep", "er", "out.txt"), "utf8")).toBe("payload");
  });
});

describe("workspace file edge cases (each once a 500)", () => {
  async function write(raw: string, text: string): Promise<void> {
    const target = await workspace.openWrite(raw);
    await target.handle.write(text);
    await target.commit();
  }

  it("refuses a symbolic link loop with PATH_INVALID, not an I/O error", async () => {
    await symlink("loop-b", path.join(workspace.root, "loop-a"));
    await symlink("loop-a", path.join(workspace.root, "loop-b"));
    expect(await codeOf(workspace.openRead("loop-a"))).toBe(ErrorCodes.PATH_INVALID);
    expect(await codeOf(workspace.openWrite("loop-a/x"))).toBe(ErrorCodes.PATH_INVALID);
  });

  it("refuses to write under a path whose directory part is a file", async () => {
    await write("a.txt", "plain");
    expect(await codeOf(workspace.openWrite("a.txt/x"))).toBe(ErrorCodes.PATH_INVALID);
    expect(await readFile(path.join(workspace.root, "a.txt"), "utf8")).toBe("plain");
  });

  it("uploads legal names up to 255 bytes and refuses a 256-byte one with PATH_INVALID", async () => {
    for (const length of [229, 240, 255]) {
      const name = "n".repeat(length);
      await write(name, `len ${length}`);
      expect(await readFile(path.join(workspace.root, name), "utf8")).toBe(`len ${length}`);
    }
    expect(await codeOf(workspace.openWrite("n".repeat(256)))).toBe(ErrorCodes.PATH_INVALID);
  });

  it("deletes a symlink that points outside the workspace, never its target", async () => {
    await symlink(path.join(base, "outside", "secret.txt"), path.join(workspace.root, "escape"));
    await workspace.delete("escape");
    await expect(readFile(path.join(workspace.root, "escape"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readFile(path.join(base, "outside", "secret.txt"), "utf8")).toBe("secret");
    // A directory symlink outside still cannot be used to delete what is behind it.
    await symlink(path.join(base, "outside"), path.join(workspace.root, "out-dir"));
    expect(await codeOf(workspace.delete("out-dir/secret.txt"))).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    expect(await readFile(path.join(base, "outside", "secret.txt"), "utf8")).toBe("secret");
  });
});
