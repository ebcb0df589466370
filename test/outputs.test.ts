import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { StreamClient } from "./helpers/ws.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("execution outputs", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;
  const run = (code: string) => orchestrator.alice.execute(session.id, { code });

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    session = await orchestrator.alice.createSession();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("separates stdout from stderr, each in the order printed", async () => {
    const res = await run('import sys\nprint("one")\nprint("oops", file=sys.stderr)\nprint("two")\nprint("again", file=sys.stderr)');
    expect(res.status).toBe("ok");
    expect(res.stdout).toBe("one\ntwo\n");
    expect(res.stderr).toBe("oops\nagain\n");
    expect(res.truncated).toBe(false);
  });

  it("streams stdout and stderr chunks over the websocket in the order they were flushed", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const trace = await stream.run(
        "order",
        'import sys\nfor i in range(3):\n    print(f"out{i}", flush=True)\n    print(f"err{i}", file=sys.stderr, flush=True)',
      );
      expect(trace.done.status).toBe("ok");
      const chunks = trace.ofType("stream").map((e) => `${e.name}:${e.text}`);
      expect(chunks.join("")).toBe("stdout:out0\nstderr:err0\nstdout:out1\nstderr:err1\nstdout:out2\nstderr:err2\n");
    } finally {
      await stream.close();
    }
  });

  it("returns the value of the last expression as an execute_result", async () => {
    const res = await run("6 * 7");
    expect(res.outputs).toEqual([expect.objectContaining({ type: "execute_result", data: expect.objectContaining({ "text/plain": "42" }) })]);
    expect(res.executionCount).toEqual(expect.any(Number));
  });

  it("returns a matplotlib plot as a base64 PNG", async () => {
    const res = await orchestrator.alice.execute(session.id, {
      code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
      timeoutMs: 45_000,
    });
    expect(res.status).toBe("ok");
    const png = res.outputs[0]?.data["image/png"];
    expect(res.outputs[0]?.type).toBe("display_data");
    expect(typeof png).toBe("string");
    const bytes = Buffer.from(String(png).replace(/\s+/g, ""), "base64");
    expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(bytes.byteLength).toBeGreaterThan(1000);
  });

  it("returns HTML displayed with IPython.display.HTML", async () => {
    const res = await run('from IPython.display import HTML, display\ndisplay(HTML("<b>bold</b> move"))');
    expect(res.status).toBe("ok");
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]?.type).toBe("display_data");
    expect(res.outputs[0]?.data["text/html"]).toBe("<b>bold</b> move");
  });

  it("returns SVG displayed with IPython.display.SVG", async () => {
    const res = await run(
      'from IPython.display import SVG, display\ndisplay(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\'))',
    );
    expect(res.status).toBe("ok");
    const svg = res.outputs[0]?.data["image/svg+xml"];
    expect(String(svg)).toContain("<svg");
    expect(String(svg)).toContain("<rect");
  });

  it("shows the updated content of a display that was updated in place", async () => {
    const res = await run('h = display("a", display_id=True)\nh.update("b")');
    expect(res.status).toBe("ok");
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]?.data["text/plain"]).toBe("'b'");
    expect(res.outputs[0]?.displayId).toEqual(expect.any(String));
  });

  it("relays a display update over the websocket as an update with the same displayId", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const trace = await stream.run("upd", 'h = display("first", display_id=True)\nh.update("second")');
      const displays = trace.ofType("display");
      expect(displays).toHaveLength(2);
      expect(displays[0]).toMatchObject({ update: false, data: { "text/plain": "'first'" } });
      expect(displays[1]).toMatchObject({ update: true, data: { "text/plain": "'second'" } });
      expect(displays[0]?.displayId).toEqual(expect.any(String));
      expect(displays[1]?.displayId).toBe(displays[0]?.displayId);
    } finally {
      await stream.close();
    }
  });

  it("applies clear_output to the REST result", async () => {
    const res = await run("from IPython.display import clear_output\nprint(1)\nclear_output()\nprint(2)");
    expect(res.status).toBe("ok");
    expect(res.stdout).toBe("2\n");
  });

  it("applies clear_output(wait=True) when the next output arrives", async () => {
    const res = await run("from IPython.display import clear_output, display\nprint(1)\ndisplay('shown')\nclear_output(wait=True)\nprint(2)");
    expect(res.status).toBe("ok");
    expect(res.stdout).toBe("2\n");
    expect(res.outputs).toEqual([]);
  });

  it("keeps output from before clear_output(wait=True) when nothing follows it", async () => {
    const res = await run("from IPython.display import clear_output\nprint(1)\nclear_output(wait=True)");
    expect(res.status).toBe("ok");
    expect(res.stdout).toBe("1\n");
  });

  it("reports an exception with its name, value and a traceback free of ANSI codes", async () => {
    const res = await run("1/0");
    expect(res.status).toBe("error");
    expect(res.error?.name).toBe("ZeroDivisionError");
    expect(res.error?.value).toContain("division by zero");
    expect(res.error?.traceback.length).toBeGreaterThan(0);
    for (const line of res.error?.traceback ?? []) expect(line).not.toContain("\u001b");
    expect(res.error?.traceback.join("\n")).toContain("ZeroDivisionError");
  });

  it("sends an error event and a done with status error over the websocket", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const trace = await stream.run("boom", "raise ValueError('bad value')");
      const [error] = trace.ofType("error");
      expect(error).toMatchObject({ name: "ValueError", value: "bad value" });
      for (const line of error?.traceback ?? []) expect(line).not.toContain("\u001b");
      expect(trace.done.status).toBe("error");
    } finally {
      await stream.close();
    }
  });
});

describe("execution output limits", () => {
  const maxOutputBytes = 4096;
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_MAX_OUTPUT_BYTES: String(maxOutputBytes) });
    session = await orchestrator.alice.createSession();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("truncates stdout beyond TETHER_MAX_OUTPUT_BYTES and says so", async () => {
    const res = await orchestrator.alice.execute(session.id, { code: 'for i in range(2000):\n    print("x" * 99)' });
    expect(res.status).toBe("ok");
    expect(res.truncated).toBe(true);
    expect(res.stdout.startsWith("x".repeat(99))).toBe(true);
    // Room for a short truncation notice, nowhere near the 200 kB printed.
    expect(Buffer.byteLength(res.stdout)).toBeLessThanOrEqual(maxOutputBytes + 512);
  });

  it("keeps working after truncating", async () => {
    const res = await orchestrator.alice.execute(session.id, { code: 'print("small")' });
    expect(res.stdout).toBe("small\n");
    expect(res.truncated).toBe(false);
  });
});
