import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { connectMcp, textOf } from "./helpers/mcp.js";

describe("mcp smoke", () => {
  let orchestrator: TestOrchestrator;
  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
  });
  afterAll(async () => {
    await orchestrator?.close();
  });
  it("runs", async () => {
    const mcp = await connectMcp(orchestrator.url, orchestrator.keys.alice);
    const tools = await mcp.client.listTools();
    console.log(tools.tools.map((t) => t.name));
    const r = await mcp.call("run_code", { code: "x = 41\nprint('hi')\nx + 1" });
    console.log(JSON.stringify(r));
    const e = await mcp.call("run_code", { code: "1/0" });
    console.log(JSON.stringify(e));
    const p = await mcp.call("run_code", { code: "import matplotlib.pyplot as plt\nplt.plot([1,2,3])\nplt.show()" });
    console.log(JSON.stringify(p).slice(0, 300));
    const i = await mcp.call("run_code", { code: "input('name? ')" });
    console.log(JSON.stringify(i));
    const t = await mcp.call("run_code", { code: "import time\ntime.sleep(5)", timeoutMs: 500 });
    console.log(JSON.stringify(t));
    await mcp.transport.terminateSession();
    expect(textOf(r)).toContain("hi");
  });
});
