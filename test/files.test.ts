import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe("workspace files", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;
  const files = () => orchestrator.alice;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_MAX_UPLOAD_BYTES: String(64 * 1024 * 1024) });
    session = await orchestrator.alice.createSession();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("uploads, lists, downloads and deletes a file", async () => {
    const put = await files().putFile(session.id, "hello.txt", "hello, world");
    expect(put.status).toBeGreaterThanOrEqual(200);
    expect(put.status).toBeLessThan(300);

    const listed = await files().listFiles(session.id);
    expect(listed.truncated).toBe(false);
    const entry = listed.files.find((f) => f.path === "hello.txt");
    expect(entry).toMatchObject({ path: "hello.txt", size: 12 });
    expect(Number.isNaN(Date.parse(entry?.modifiedAt ?? ""))).toBe(false);

    const got = await files().getFile(session.id, "hello.txt");
    expect(got.status).toBe(200);
    expect(got.text()).toBe("hello, world");

    const deleted = await files().deleteFile(session.id, "hello.txt");
    expect(deleted.status).toBe(204);
    const after = await files().getFile(session.id, "hello.txt");
    expect(after.status).toBe(404);
    expect(after.errorCode()).toBe(ErrorCodes.FILE_NOT_FOUND);
    expect((await files().listFiles(session.id)).files.map((f) => f.path)).not.toContain("hello.txt");
  });

  it("a workspace file named like a module the kernel needs (json.py) does not break a kernel start; user code still imports workspace modules first", async () => {
    const own = await orchestrator.alice.createSession();
    try {
      await files().putFile(own.id, "json.py", "raise RuntimeError('the workspace json.py was imported')\n");
      await files().putFile(own.id, "helper_mod.py", "X = 42\n");
      // A restart starts a kernel in a workspace that has them (as a resume does, its files restored while the kernel starts).
      await orchestrator.alice.restart(own.id);
      const res = await orchestrator.alice.execute(own.id, { code: "import helper_mod, json, sys, os\nprint(helper_mod.X, json.dumps([1]), sys.path[0] == os.getcwd())" });
      expect(res).toMatchObject({ status: "ok", stdout: "42 [1] True\n" });
      // The kernel starts without debugpy, which user code can still import.
      const debug = await orchestrator.alice.execute(own.id, { code: "import debugpy\nprint(debugpy.__name__)" });
      expect(debug).toMatchObject({ status: "ok", stdout: "debugpy\n" });
    } finally {
      await orchestrator.alice.request("DELETE", `/v1/sessions/${own.id}`);
    }
  });

  it("replaces a file uploaded twice", async () => {
    await files().putFile(session.id, "twice.txt", "first version, longer");
    await files().putFile(session.id, "twice.txt", "second");
    expect((await files().getFile(session.id, "twice.txt")).text()).toBe("second");
  });

  it("lets Python read an uploaded file from its working directory", async () => {
    const put = await files().putFile(session.id, "data.csv", "a,b\n1,2\n");
    expect(put.status).toBeLessThan(300);
    const res = await orchestrator.alice.execute(session.id, { code: "import pandas as pd\ndf = pd.read_csv('data.csv')\nprint(int(df['a'][0] + df['b'][0]))" });
    expect(res.status).toBe("ok");
    expect(res.stdout).toBe("3\n");
  });

  it("serves a file written by Python, in a subdirectory, under its '/'-separated path", async () => {
    const res = await orchestrator.alice.execute(session.id, {
      code: "import os\nos.makedirs('out', exist_ok=True)\nwith open('out/result.txt', 'w') as f:\n    f.write('from python')",
    });
    expect(res.status).toBe("ok");
    const listed = await files().listFiles(session.id);
    expect(listed.files).toContainEqual(expect.objectContaining({ path: "out/result.txt", size: 11 }));
    const got = await files().getFile(session.id, "out/result.txt");
    expect(got.status).toBe(200);
    expect(got.text()).toBe("from python");
  });

  it("round-trips a 20 MB binary file byte for byte", async () => {
    const bytes = randomBytes(20 * 1024 * 1024);
    const put = await files().putFile(session.id, "big.bin", bytes);
    expect(put.status).toBeLessThan(300);

    const inKernel = await orchestrator.alice.execute(session.id, {
      code: "import hashlib\nprint(hashlib.sha256(open('big.bin', 'rb').read()).hexdigest())",
    });
    expect(inKernel.stdout.trim()).toBe(sha256(bytes));

    const got = await files().getFile(session.id, "big.bin");
    expect(got.status).toBe(200);
    expect(got.body.byteLength).toBe(bytes.byteLength);
    expect(sha256(got.body)).toBe(sha256(bytes));
  });

  it("refuses paths that climb out of the workspace with '..'", async () => {
    for (const path of ["%2E%2E/escape.txt", "%2E%2E%2Fescape.txt", "sub/%2E%2E/%2E%2E/escape.txt"]) {
      for (const res of [await files().getFile(session.id, path), await files().putFile(session.id, path, "x"), await files().deleteFile(session.id, path)]) {
        expect({ path, status: res.status, code: res.errorCode() }).toEqual({ path, status: 400, code: ErrorCodes.PATH_ESCAPES_WORKSPACE });
      }
    }
  });

  it("refuses absolute paths", async () => {
    for (const res of [await files().getFile(session.id, "%2Fetc%2Fpasswd"), await files().putFile(session.id, "%2Ftmp%2Ftether-escape.txt", "x")]) {
      expect(res.status).toBe(400);
      expect(res.errorCode()).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
    }
    expect(existsSync("/tmp/tether-escape.txt")).toBe(false);
  });

  it("refuses paths with invalid syntax", async () => {
    for (const path of ["a%5Cb.txt", "dir//file.txt", "%00nul.txt"]) {
      const res = await files().getFile(session.id, path);
      expect({ path, status: res.status, code: res.errorCode() }).toEqual({ path, status: 400, code: ErrorCodes.PATH_INVALID });
    }
  });

  it("refuses to follow a symlink that points outside the workspace", async () => {
    const outside = await mkdtemp(join(tmpdir(), "tether-outside-"));
    try {
      const made = await orchestrator.alice.execute(session.id, {
        // makedirs: in the sandbox (the default) /tmp is the sandbox's own, where the host's directory does not exist.
        code: `import os\nos.makedirs(${JSON.stringify(outside)}, exist_ok=True)\nopen(${JSON.stringify(join(outside, "secret.txt"))}, "w").write("secret")\nos.symlink(${JSON.stringify(outside)}, "outside-dir")\nos.symlink(${JSON.stringify(join(outside, "secret.txt"))}, "secret-link")`,
      });
      expect(made.status).toBe("ok");

      const attempts = [
        await files().getFile(session.id, "secret-link"),
        await files().getFile(session.id, "outside-dir/secret.txt"),
        await files().putFile(session.id, "outside-dir/planted.txt", "planted"),
        await files().putFile(session.id, "secret-link", "overwritten"),
        await files().deleteFile(session.id, "outside-dir/secret.txt"),
      ];
      for (const res of attempts) {
        expect(res.status).toBe(400);
        expect(res.errorCode()).toBe(ErrorCodes.PATH_ESCAPES_WORKSPACE);
      }
      expect(existsSync(join(outside, "planted.txt"))).toBe(false);
      // Seen from the kernel (the worker's side, wherever that is): nothing planted, nothing overwritten or deleted.
      const secret = await orchestrator.alice.execute(session.id, {
        code: `import os\nprint(open(${JSON.stringify(join(outside, "secret.txt"))}).read(), os.path.exists(${JSON.stringify(join(outside, "planted.txt"))}))`,
      });
      expect(secret.stdout).toBe("secret False\n");
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("answers 404 TETHER_ERR_FILE_NOT_FOUND for a file that does not exist", async () => {
    const got = await files().getFile(session.id, "nope.txt");
    expect(got.status).toBe(404);
    expect(got.errorCode()).toBe(ErrorCodes.FILE_NOT_FOUND);
    const deleted = await files().deleteFile(session.id, "nope.txt");
    expect(deleted.status).toBe(404);
    expect(deleted.errorCode()).toBe(ErrorCodes.FILE_NOT_FOUND);
  });
});
