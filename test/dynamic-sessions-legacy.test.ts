import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { field, multipart, replay } from "./helpers/dynamic-sessions.js";

/**
 * The 2024-02-02-preview data plane as LangChain (Python and JS), Semantic
 * Kernel Python, AutoGen and LlamaIndex send it: each request replays the
 * client's exact method, path, query order, headers and body (from the
 * clients' sources and wire captures in notes/agent-integrations.md), and the
 * test reads back exactly the fields that client parses.
 */
describe("dynamic sessions, 2024-02-02-preview clients", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("LangChain Python: execute, plot, upload, list, download, delete the session", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2024-02-02-preview`;
    const headers = { "user-agent": "langchain-azure-dynamic-sessions/1.0.3 (Language=Python)" };
    const executed = await replay(orchestrator.alice, "POST", `code/execute?${query}`, {
      headers,
      json: '{"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "print(\'hello world\')\\n1 + 1"}}',
    });
    expect(executed.status).toBe(200);
    const properties = field(executed.json(), "properties");
    // tests/integration_tests/test_end_to_end.py: {"result": 2, "stdout": "hello world\n", "stderr": ""}
    expect({ result: field(properties, "result"), stdout: field(properties, "stdout"), stderr: field(properties, "stderr") }).toEqual({ result: 2, stdout: "hello world\n", stderr: "" });
    expect(executed.json()).toMatchObject({ $id: "1", properties: { $id: "2", status: "Success" } });
    expect(typeof field(properties, "executionTimeInMilliseconds")).toBe("number");

    const plot = await replay(orchestrator.alice, "POST", `code/execute?${query}`, {
      headers,
      json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()" } }),
    });
    const image = field(plot.json(), "properties", "result");
    expect(Object.keys(image as object).sort()).toEqual(["base64_data", "format", "type"]);
    expect([field(image, "type"), field(image, "format")]).toEqual(["image", "png"]);
    expect(Buffer.from(String(field(image, "base64_data")), "base64").subarray(1, 4).toString("latin1")).toBe("PNG");

    const boundary = "dbfa8d79d0b64c0b8a0d7c7e2b3c9f21";
    const uploaded = await replay(orchestrator.alice, "POST", `files/upload?${query}`, {
      headers: { ...headers, "content-type": `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, { filename: "data.json", data: "hello" }),
    });
    expect(uploaded.status).toBe(200);
    expect(field(uploaded.json(), "value", 0, "properties")).toMatchObject({ filename: "data.json", size: 5 });

    const listed = await replay(orchestrator.alice, "GET", `files?${query}`, { headers });
    const entries = field(listed.json(), "value") as unknown[];
    expect(entries.map((entry) => [field(entry, "properties", "filename"), field(entry, "properties", "size")])).toContainEqual(["data.json", 5]);

    const downloaded = await replay(orchestrator.alice, "GET", `files/content/${encodeURIComponent("data.json")}?${query}`, { headers });
    expect(downloaded.status).toBe(200);
    expect(downloaded.text()).toBe("hello");

    // close(): DELETE session with the newer api-version, raise_for_status only.
    const deleted = await replay(orchestrator.alice, "DELETE", `session?identifier=${id}&api-version=2025-10-02-preview`, { headers });
    expect(deleted.status).toBe(204);
    expect((await orchestrator.alice.listSessions()).sessions.filter((s) => s.metadata.identifier === id)).toEqual([]);
    expect((await replay(orchestrator.alice, "GET", `session?identifier=${id}&api-version=2025-10-02-preview`)).status).toBe(404);
  });

  it("LangChain JS: execute (properties must exist), FormData upload, list, download by raw name", async () => {
    const id = "session-id-js";
    const query = `identifier=${encodeURIComponent(id)}&api-version=2024-02-02-preview`;
    const headers = { "user-agent": "langchainjs-azure-dynamic-sessions (Language=JavaScript; node.js/v20.20.2; linux; x64)" };
    const executed = await replay(orchestrator.alice, "POST", `code/execute?${query}`, {
      headers,
      json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "print('hello')\n1 + 1" } }),
    });
    const { properties } = executed.json<{ properties: { result: unknown; stdout: unknown; stderr: unknown } }>();
    expect(JSON.parse(JSON.stringify({ result: properties.result, stdout: properties.stdout, stderr: properties.stderr }, null, 2))).toEqual({ result: 2, stdout: "hello\n", stderr: "" });

    // FormData.append("file", blob, remoteFilename), framed by undici as the client's fetch does.
    const form = new FormData();
    form.append("file", new Blob(["a,b\n1,2\n"]), "table.csv");
    const request = new Request("http://x/", { method: "POST", body: form });
    const uploaded = await replay(orchestrator.alice, "POST", `files/upload?${query}`, {
      headers: { ...headers, "content-type": request.headers.get("content-type") ?? "" },
      body: Buffer.from(await request.arrayBuffer()),
    });
    expect(uploaded.status).toBe(200);
    expect(field(uploaded.json(), "value", 0, "properties")).toMatchObject({ filename: "table.csv", size: 8 });
    const listed = (field((await replay(orchestrator.alice, "GET", `files?${query}`, { headers })).json(), "value") as unknown[]).map((entry) => field(entry, "properties"));
    expect(listed).toContainEqual(expect.objectContaining({ filename: "table.csv", size: 8 }));
    expect((await replay(orchestrator.alice, "GET", `files/content/table.csv?${query}`, { headers })).text()).toBe("a,b\n1,2\n");
  });

  it("Semantic Kernel Python: execute with timeoutInSeconds, a multipart upload mislabelled application/json with a /mnt/data/ filename, list, download", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2024-02-02-preview`;
    const headers = { "user-agent": "semantic-kernel-python/1.45.0 (Language=Python)", authorization: `Bearer ${orchestrator.keys.alice}` };
    const executed = await replay(orchestrator.alice, "POST", `code/execute/?${query}`, {
      headers: { ...headers, "content-type": "application/json" },
      json: '{"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "x = 21\\nx * 2", "timeoutInSeconds": 100}}',
    });
    expect(executed.status).toBe(200);
    const properties = field(executed.json(), "properties");
    // All four keys are indexed directly (KeyError otherwise).
    expect([field(properties, "status"), field(properties, "result"), field(properties, "stdout"), field(properties, "stderr")]).toEqual(["Success", 42, "", ""]);

    const boundary = "678fd42f5a0b4f5cb1b7e7c4d0a1e2f3";
    const uploaded = await replay(orchestrator.alice, "POST", `files/upload?${query}`, {
      // httpx kept the client's default Content-Type: application/json on a multipart body.
      headers: { ...headers, "content-type": "application/json" },
      body: multipart(boundary, { filename: "/mnt/data/x.txt", data: "sk python" }),
    });
    expect(uploaded.status).toBe(200);
    const files = field((await replay(orchestrator.alice, "GET", `files?${query}`, { headers })).json(), "value") as unknown[];
    const fullPaths = files.map((entry) => {
      const filename = String(field(entry, "properties", "filename"));
      field(entry, "properties", "size");
      return filename.startsWith("/mnt/data/") ? filename : `/mnt/data/${filename}`;
    });
    expect(fullPaths).toContain("/mnt/data/x.txt");
    expect((await replay(orchestrator.alice, "GET", `files/content/x.txt?${query}`, { headers })).text()).toBe("sk python");
    const read = await replay(orchestrator.alice, "POST", `code/execute?${query}`, {
      json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "open('x.txt').read()", timeoutInSeconds: 100 } }),
    });
    expect(field(read.json(), "properties", "result")).toBe("sk python");
  });

  it("AutoGen: package list as IPython text, chdir to /mnt/data, Failure with the traceback in stderr, aiohttp-framed upload", async () => {
    const id = randomUUID();
    // AutoGen puts api-version first and does not encode the identifier.
    const query = `api-version=2024-02-02-preview&identifier=${id}`;
    const headers = { "user-agent": "Python/3.11 aiohttp/3.8.4" };
    const execute = (code: string) =>
      replay(orchestrator.alice, "POST", `code/execute?${query}`, { headers, json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code } }) });

    const packages = field((await execute("\nimport pkg_resources\n[d.project_name for d in pkg_resources.working_set]\n")).json(), "properties");
    expect(String(field(packages, "status"))).toContain("Success");
    // get_available_packages: result.strip("[]").split(",\n"), each .strip(" '")
    const names = String(field(packages, "result")).replace(/^\[|\]$/g, "").split(",\n").map((name) => name.replace(/^[ ']+|[ ']+$/g, ""));
    expect(names.length).toBeGreaterThan(3);
    expect(names.every((name) => /^[A-Za-z0-9_.-]+$/.test(name))).toBe(true);

    // The sandboxed local launcher (the default) mounts the workspace at /mnt/data: AutoGen's _setup_cwd works.
    const chdir = field((await execute("import os; os.chdir('/mnt/data')")).json(), "properties");
    expect(field(chdir, "status")).toBe("Success");
    await execute("open('written-in-mnt-data.txt', 'w').write('via /mnt/data')");

    const failed = field((await execute("def f():\n    raise ValueError('boom')\nf()")).json(), "properties");
    expect(String(field(failed, "status"))).toContain("Failure");
    expect(String(field(failed, "stderr")) + String(field(failed, "stdout"))).toContain("ValueError: boom");
    expect(field(failed, "stderr")).not.toContain("\u001b[");
    expect(typeof field(failed, "stdout")).toBe("string");

    const boundary = "e13d2f1b9c8a4d7e";
    const uploaded = await replay(orchestrator.alice, "POST", `files/upload?${query}`, {
      headers: { ...headers, "content-type": `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, { filename: "a.txt", data: "hello", headerOrder: "type-first" }),
    });
    expect(uploaded.status).toBe(200);
    const listed = (field((await replay(orchestrator.alice, "GET", `files?${query}`, { headers })).json(), "value") as unknown[]).map((entry) => field(entry, "properties", "filename"));
    expect(listed).toContain("a.txt");
    expect(listed).toContain("written-in-mnt-data.txt");
    expect((await replay(orchestrator.alice, "GET", `files/content/a.txt?${query}`, { headers })).text()).toBe("hello");
  });

  it("LlamaIndex: code with a trailing newline, a plot's format and base64_data, an upload named /mnt/data/<base>", async () => {
    const id = randomUUID();
    const query = `identifier=${encodeURIComponent(id)}&api-version=2024-02-02-preview`;
    const headers = { "user-agent": "llamaindex-azure-code-interpreter/0.5.0 (Language=Python)" };
    const plotted = await replay(orchestrator.alice, "POST", `code/execute?${query}`, {
      headers,
      json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "import matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\nplt.show()\n" } }),
    });
    const result = field(plotted.json(), "properties", "result");
    expect(field(result, "format")).toBe("png");
    expect(String(field(result, "base64_data")).length).toBeGreaterThan(1000);

    const boundary = "llamaindexboundary0123456789";
    const uploaded = await replay(orchestrator.alice, "POST", `files/upload?${query}`, {
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, { filename: "/mnt/data/notes.md", data: "# notes\n" }),
    });
    for (const entry of field(uploaded.json(), "value") as unknown[]) {
      const properties = "properties" in (entry as object) ? field(entry, "properties") : entry;
      expect([field(properties, "filename"), field(properties, "size")]).toEqual(["notes.md", 8]);
    }
    expect((await replay(orchestrator.alice, "GET", `files/content/notes.md?${query}`)).text()).toBe("# notes\n");
  });

  it("answers python/execute with both properties and the top-level fields, and keeps identifiers private to the tenant", async () => {
    const id = "shared-name";
    const query = `identifier=${id}&api-version=2024-02-02-preview`;
    const legacy = await replay(orchestrator.alice, "POST", `python/execute?${query}`, {
      json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "secret = 'alice only'\nprint('a')\n'done'" } }),
    });
    expect(legacy.json()).toMatchObject({ status: "Success", stdout: "a\n", stderr: "", result: "done", properties: { status: "Success", result: "done" } });
    const bobs = await replay(orchestrator.bob, "POST", `code/execute?${query}`, {
      json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "print(secret)" } }),
    });
    expect(field(bobs.json(), "properties", "status")).toBe("Failure");
    expect(String(field(bobs.json(), "properties", "stderr"))).toContain("NameError");
  });

  it("recreates the session of an identifier whose Tether session was deleted, and refuses calls without a key", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2024-02-02-preview`;
    const run = (code: string) =>
      replay(orchestrator.alice, "POST", `code/execute?${query}`, { json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code } }) });
    await run("kept = 1");
    const [tether] = (await orchestrator.alice.listSessions()).sessions.filter((s) => s.metadata.identifier === id);
    await orchestrator.alice.deleteSession(tether?.id ?? "");
    const again = field((await run("print('back')")).json(), "properties");
    expect(field(again, "stdout")).toBe("back\n");
    expect((await orchestrator.alice.listSessions()).sessions.filter((s) => s.metadata.identifier === id)).toHaveLength(1);

    const anonymous = await orchestrator.alice.as(undefined).request("POST", `/dynamic-sessions/code/execute?${query}`, { json: { properties: { code: "1" } } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.errorCode()).toBe("TETHER_ERR_AUTH_MISSING");
    expect(anonymous.headers["x-ms-error-code"]).toBe("TETHER_ERR_AUTH_MISSING");
  });
});

describe("dynamic sessions without the sandbox (TETHER_SANDBOX=off)", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SANDBOX: "off" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("has no per-session /mnt/data: AutoGen's chdir fails with a note saying so, and file names under /mnt/data/ still map to the workspace", async () => {
    const id = randomUUID();
    const query = `api-version=2024-02-02-preview&identifier=${id}`;
    const execute = (code: string) => replay(orchestrator.alice, "POST", `code/execute?${query}`, { json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code } }) });
    expect(field((await execute("__import__('os').path.isdir('/mnt/data')")).json(), "properties", "result")).toBe(false);
    const chdir = field((await execute("import os; os.chdir('/mnt/data')")).json(), "properties");
    expect(field(chdir, "status")).toBe("Failure");
    expect(String(field(chdir, "stderr"))).toContain("FileNotFoundError");
    expect(String(field(chdir, "stderr"))).toContain("Note from Tether: /mnt/data does not exist in this session");
    const other = field((await execute("1 / 0")).json(), "properties");
    expect(String(field(other, "stderr"))).not.toContain("Note from Tether");

    const boundary = "nosandbox0123";
    await replay(orchestrator.alice, "POST", `files/upload?${query}`, {
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, { filename: "/mnt/data/in.txt", data: "relative works" }),
    });
    expect(field((await execute("open('in.txt').read()")).json(), "properties", "result")).toBe("relative works");
  });
});
