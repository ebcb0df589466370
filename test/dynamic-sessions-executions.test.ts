import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { field, multipart, replay } from "./helpers/dynamic-sessions.js";

/**
 * The newer data plane (2024-10-02-preview .. 2025-10-02-preview): `executions`,
 * file resources, session and metadata, as Semantic Kernel .NET and
 * LangChain's SessionsBashTool send them, replayed exactly.
 */
describe("dynamic sessions, executions API clients", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("Semantic Kernel .NET: flat execute body (either enum case), executionResult as a string, upload, list, download", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2024-10-02-preview`;
    const headers = { "user-agent": "Semantic-Kernel/1.82.0 (Language=dotnet)", "content-type": "application/json; charset=utf-8" };
    const executed = await replay(orchestrator.alice, "POST", `executions?${query}`, {
      headers,
      json: '{"codeInputType":"Inline","executionType":"Synchronous","timeoutInSeconds":100,"code":"print(\'Hello World!\')"}',
    });
    expect(executed.status).toBe(200);
    expect(executed.json()).toMatchObject({ identifier: id, executionType: "Synchronous", status: "Succeeded", result: { stdout: "Hello World!\n", stderr: "", executionResult: "" } });
    expect(executed.headers["operation-id"]).toBe(field(executed.json(), "id"));

    const lowercase = await replay(orchestrator.alice, "POST", `executions?${query}`, {
      headers,
      json: '{"codeInputType":"inline","executionType":"synchronous","timeoutInSeconds":100,"code":"2 + 2"}',
    });
    // SessionsPythonCodeExecutionResult.result.executionResult is a C# string: a JSON number would not deserialize.
    expect(field(lowercase.json(), "result", "executionResult")).toBe("4");

    const failed = await replay(orchestrator.alice, "POST", `executions?${query}`, { headers, json: '{"codeInputType":"Inline","executionType":"Synchronous","timeoutInSeconds":100,"code":"1/0"}' });
    expect(failed.status).toBe(200);
    expect(failed.json()).toMatchObject({ status: "Failed", error: { code: "ZeroDivisionError" } });
    expect(String(field(failed.json(), "result", "stderr"))).toContain("ZeroDivisionError: division by zero");

    const boundary = "--sk-dotnet-boundary-7f3a";
    const uploaded = await replay(orchestrator.alice, "POST", `files?${query}`, {
      headers: { "user-agent": headers["user-agent"], "content-type": `multipart/form-data; boundary="${boundary}"` },
      body: multipart(boundary, { filename: "test-file.txt", data: "dotnet bytes" }),
    });
    expect(uploaded.status).toBe(200);
    // SessionsRemoteFileMetadata: name, type and lastModifiedAt are required, sizeInBytes an int32.
    expect(uploaded.json()).toMatchObject({ name: "test-file.txt", type: "File", contentType: "text/plain", sizeInBytes: 12 });
    expect(Number.isNaN(Date.parse(String(field(uploaded.json(), "lastModifiedAt"))))).toBe(false);

    const listed = field((await replay(orchestrator.alice, "GET", `files?${query}`, { headers })).json(), "value") as unknown[];
    expect(listed).toContainEqual(expect.objectContaining({ name: "test-file.txt", type: "File", sizeInBytes: 12 }));
    const content = await replay(orchestrator.alice, "GET", `files/${encodeURIComponent("test-file.txt")}/content?${query}`, { headers });
    expect(content.headers["content-type"]).toBe("application/octet-stream");
    expect(content.text()).toBe("dotnet bytes");
  });

  it("runs an Asynchronous execution: 202 with operation-id and Operation-Location, then GET executions/{id} until it ends", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2025-10-02-preview`;
    const started = await replay(orchestrator.alice, "POST", `executions?${query}`, {
      headers: { "operation-id": "testExecutionId" },
      json: JSON.stringify({ codeInputType: "Inline", executionType: "Asynchronous", code: "import time\ntime.sleep(1)\nprint(7 * 9)", timeoutInSeconds: 60 }),
    });
    expect(started.status).toBe(202);
    expect(started.json()).toEqual({ id: "testExecutionId", identifier: id, executionType: "Asynchronous", status: "Running" });
    expect(started.headers["operation-id"]).toBe("testExecutionId");
    const location = new URL(String(started.headers["operation-location"]));
    expect(location.pathname).toBe("/dynamic-sessions/executions/testExecutionId");
    expect(location.searchParams.get("identifier")).toBe(id);

    let status = "Running";
    let body: unknown;
    const deadline = Date.now() + 60_000;
    while (status === "Running" && Date.now() < deadline) {
      const polled = await orchestrator.alice.request("GET", `${location.pathname}${location.search}`);
      expect(polled.status).toBe(200);
      body = polled.json();
      status = String(field(body, "status"));
      if (status === "Running") await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(body).toMatchObject({ id: "testExecutionId", status: "Succeeded", result: { stdout: "63\n", stderr: "", executionResult: "" } });

    const again = await replay(orchestrator.alice, "POST", `executions?${query}`, { headers: { "operation-id": "testExecutionId" }, json: '{"code":"1"}' });
    expect(again.status).toBe(409);
    const unknown = await replay(orchestrator.alice, "GET", `executions/nope?${query}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers["x-ms-error-code"]).toBe("TETHER_ERR_EXEC_UNKNOWN_REQUEST");
    const otherTenant = await replay(orchestrator.bob, "GET", `executions/testExecutionId?${query}`);
    expect(otherTenant.status).toBe(404);
  });

  it("LangChain SessionsBashTool: shellCommand alone, status as the exit code, stdin, files under path=/mnt/data", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2025-02-02-preview`;
    const headers = { "user-agent": "langchain-azure-dynamic-sessions/1.0.3 (Language=Python)" };
    const echoed = await replay(orchestrator.alice, "POST", `executions?${query}`, { headers, json: '{"shellCommand": "echo hello"}' });
    expect(echoed.status).toBe(200);
    expect(Number.parseInt(String(field(echoed.json(), "status")), 10)).toBe(0);
    expect([field(echoed.json(), "result", "stdout"), field(echoed.json(), "result", "stderr")]).toEqual(["hello\n", ""]);

    const failing = await replay(orchestrator.alice, "POST", `executions?${query}`, { headers, json: '{"shellCommand": "echo oops >&2; exit 3"}' });
    expect(field(failing.json(), "status")).toBe("3");
    expect(field(failing.json(), "result", "stderr")).toBe("oops\n");

    // CodeExecution_Execute_ShellCommand.json
    const withStdin = await replay(orchestrator.alice, "POST", `executions?${query}`, {
      json: JSON.stringify({ codeInputType: "Inline", executionType: "Synchronous", stdin: "testinputlineline", shellCommand: 'read LINE;first_input="$LINE";echo first_input:$first_input', outputStreamsMaxLength: 4096, timeoutInSeconds: 600 }),
    });
    expect(withStdin.json()).toMatchObject({ status: "0", result: { stdout: "first_input:testinputlineline\n", stderr: "" } });

    const boundary = "bashboundary42";
    const uploaded = await replay(orchestrator.alice, "POST", `files?path=${encodeURIComponent("/mnt/data")}&identifier=${id}&api-version=2025-02-02-preview`, {
      headers: { ...headers, "content-type": `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, { filename: "script.sh", data: "echo from a file\n" }),
    });
    expect([field(uploaded.json(), "name"), field(uploaded.json(), "sizeInBytes")]).toEqual(["script.sh", 17]);
    const ran = await replay(orchestrator.alice, "POST", `executions?${query}`, { headers, json: '{"shellCommand": "sh script.sh && pwd"}' });
    expect(String(field(ran.json(), "result", "stdout"))).toMatch(/^from a file\n\//);
    const listed = field((await replay(orchestrator.alice, "GET", `files?${query}`, { headers })).json(), "value") as unknown[];
    expect(listed.map((entry) => [field(entry, "name"), field(entry, "sizeInBytes")])).toContainEqual(["script.sh", 17]);
    expect((await replay(orchestrator.alice, "GET", `files/${encodeURIComponent("script.sh")}/content?${query}`, { headers })).text()).toBe("echo from a file\n");
  });

  it("lists directories with path and recursive, reads one file's metadata, deletes a file, and answers session and metadata", async () => {
    const id = randomUUID();
    const query = `identifier=${id}&api-version=2025-10-02-preview`;
    await replay(orchestrator.alice, "POST", `executions?${query}`, {
      json: JSON.stringify({ code: "import os\nos.makedirs('test-directory/test-sub-directory', exist_ok=True)\nopen('test-directory/top.txt', 'w').write('top')\nopen('test-directory/test-sub-directory/testfile.yaml', 'w').write('a: 1')" }),
    });
    const flat = field((await replay(orchestrator.alice, "GET", `files?path=test-directory&${query}`)).json(), "value");
    expect(flat).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "top.txt", directory: "test-directory", type: "File", sizeInBytes: 3 }),
        expect.objectContaining({ name: "test-sub-directory", directory: "test-directory", type: "Directory" }),
      ]),
    );
    expect(flat).toHaveLength(2);
    const recursive = field((await replay(orchestrator.alice, "GET", `files?path=/mnt/data/test-directory&recursive=true&${query}`)).json(), "value");
    expect(recursive).toContainEqual(expect.objectContaining({ name: "testfile.yaml", directory: "test-directory/test-sub-directory", contentType: "application/yaml" }));

    const one = await replay(orchestrator.alice, "GET", `files/top.txt?path=test-directory&${query}`);
    expect(one.json()).toMatchObject({ name: "top.txt", sizeInBytes: 3 });
    expect((await replay(orchestrator.alice, "DELETE", `files/top.txt?path=test-directory&${query}`)).status).toBe(204);
    const gone = await replay(orchestrator.alice, "GET", `files/top.txt?path=test-directory&${query}`);
    expect(gone.status).toBe(404);
    expect(gone.json()).toMatchObject({ error: { code: "TETHER_ERR_FILE_NOT_FOUND" } });

    const session = await replay(orchestrator.alice, "GET", `session?${query}`);
    expect(session.json()).toMatchObject({ identifier: id });
    for (const key of ["createdAt", "lastAccessedAt", "expireAt", "etag"]) expect(typeof field(session.json(), key)).toBe("string");
    const metadata = await replay(orchestrator.alice, "GET", "metadata?api-version=2025-10-02-preview");
    expect(field(metadata.json(), "runtimes", 0, "name")).toBe("python");
    expect(String(field(metadata.json(), "runtimes", 0, "version"))).toMatch(/^3\./);

    const refused = await replay(orchestrator.alice, "POST", `executions?${query}`, { json: '{"execCommandAndArgs": {"command": "ls"}}' });
    expect(refused.status).toBe(400);
    expect(refused.json()).toMatchObject({ error: { code: "TETHER_ERR_REQUEST_INVALID", hint: expect.stringContaining("shellCommand") } });
    const noCode = await replay(orchestrator.alice, "POST", `executions?${query}`, { json: '{"executionType": "Synchronous"}' });
    expect(noCode.status).toBe(400);
    const missingIdentifier = await replay(orchestrator.alice, "POST", "executions?api-version=2025-10-02-preview", { json: '{"code": "1"}' });
    expect(missingIdentifier.status).toBe(400);
    expect(missingIdentifier.json()).toMatchObject({ error: { message: expect.stringContaining("`identifier`") } });
  });
});
