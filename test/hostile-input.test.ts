import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { processesUsingDirectory } from "./helpers/processes.js";
import { StreamClient } from "./helpers/ws.js";

/** Hostile and careless input (reliability issue, items 4, 5, 7, 9): each answered at once, nothing lost. */
describe("hostile input through the real stack", () => {
  let orchestrator: TestOrchestrator;
  let sessionId: string;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    sessionId = (await orchestrator.alice.createSession()).id;
    await orchestrator.alice.execute(sessionId, { code: "kept = 'variables survive'" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("refuses NUL bytes and lone surrogates in code and stdin at once, naming the field and position, and loses nothing", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ code: "x = 1\u0000" }, "`code` contains a NUL byte at character 5."],
      [{ code: 's = "\ud800"' }, "`code` contains a lone surrogate U+D800 at character 5."],
      [{ code: "input()", stdin: ["ok", "bad \udc00"] }, "`stdin[1]` contains a lone surrogate U+DC00 at character 4."],
    ];
    for (const [body, message] of cases) {
      const startedAt = Date.now();
      const res = await orchestrator.alice.request("POST", `/v1/sessions/${sessionId}/execute`, { json: body });
      expect(res.status).toBe(400);
      expect(res.errorCode()).toBe(ErrorCodes.REQUEST_INVALID_TEXT);
      expect(res.json<{ error: { message: string; hint?: string } }>().error).toMatchObject({ message, hint: expect.any(String) });
      expect(Date.now() - startedAt).toBeLessThan(5_000);
    }
    const stream = await StreamClient.open(orchestrator.url, sessionId, orchestrator.keys.alice);
    try {
      stream.send({ type: "execute", requestId: "nul", code: "print(1)\u0000" });
      expect(await stream.nextMessage((m) => m.type === "protocol_error")).toMatchObject({ requestId: "nul", code: ErrorCodes.REQUEST_INVALID_TEXT });
      stream.send({ type: "execute", requestId: "ask", code: "name = input('name? ')" });
      await stream.nextMessage((m) => m.type === "input_request" && m.requestId === "ask");
      stream.send({ type: "input_reply", requestId: "ask", value: "Ada \ud83d" });
      expect(await stream.nextMessage((m) => m.type === "protocol_error")).toMatchObject({ requestId: "ask", code: ErrorCodes.REQUEST_INVALID_TEXT });
      // Still waiting for a valid answer.
      stream.send({ type: "input_reply", requestId: "ask", value: "Ada" });
      expect((await stream.collectUntilDone("ask")).done.status).toBe("ok");
    } finally {
      await stream.close();
    }
    expect((await orchestrator.alice.execute(sessionId, { code: "print(kept, name)" })).stdout).toBe("variables survive Ada\n");
  });

  it("answers file API edge cases with 4xx codes: a symlink loop, a file in the path, long names; deletes an outward symlink itself", async () => {
    const { alice } = orchestrator;
    await alice.execute(sessionId, { code: "import os\nos.symlink('loop-b', 'loop-a')\nos.symlink('loop-a', 'loop-b')\nopen('a.txt', 'w').write('plain')\nos.symlink('/etc/hostname', 'outward')" });
    const loop = await alice.getFile(sessionId, "loop-a");
    expect({ status: loop.status, code: loop.errorCode() }).toEqual({ status: 400, code: ErrorCodes.PATH_INVALID });
    const under = await alice.putFile(sessionId, "a.txt/x", "nope");
    expect({ status: under.status, code: under.errorCode() }).toEqual({ status: 400, code: ErrorCodes.PATH_INVALID });
    for (const length of [229, 255]) {
      const res = await alice.putFile(sessionId, "n".repeat(length), `name of ${length}`);
      expect({ length, status: res.status }).toEqual({ length, status: 200 });
    }
    const tooLong = await alice.putFile(sessionId, "n".repeat(256), "x");
    expect({ status: tooLong.status, code: tooLong.errorCode() }).toEqual({ status: 400, code: ErrorCodes.PATH_INVALID });
    const hostname = await readFile("/etc/hostname", "utf8");
    expect((await alice.deleteFile(sessionId, "outward")).status).toBe(204);
    expect(await readFile("/etc/hostname", "utf8")).toBe(hostname);
    const left = (await alice.execute(sessionId, { code: "import os\nprint(os.path.lexists('outward'))" })).stdout;
    expect(left).toBe("False\n");
  });

  it("keeps the Jupyter token off every command line and makes new files and directories private", async () => {
    const res = await orchestrator.alice.execute(sessionId, {
      code: "import os\nopen('private.txt', 'w').write('x')\nos.mkdir('private-dir')\nprint(oct(os.stat('private.txt').st_mode & 0o777), oct(os.stat('private-dir').st_mode & 0o777))",
    });
    expect(res.stdout).toBe("0o600 0o700\n");
    // This orchestrator's processes only (other Tether instances may run on the machine).
    const ours = await processesUsingDirectory(orchestrator.dataDir);
    const jupyter = ours.filter((p) => p.cmdline.includes("jupyter"));
    expect(jupyter.length).toBeGreaterThan(0);
    // The bootstrap's own source mentions the flag; a token (48 hex digits) must never follow it.
    for (const p of jupyter) expect(p.cmdline).not.toMatch(/--ServerApp\.token=[0-9a-f]{16,}/);
    const workspaces = `${orchestrator.dataDir}/workspaces`;
    // Nobody else lists or writes it; the sandbox user (nobody) may only pass through (o+x).
    expect((await stat(workspaces)).mode & 0o776).toBe(0o700);
  });

  it("refuses a 60 MiB first frame on the worker gateway from its header, without buffering it", async () => {
    const port = Number(new URL(orchestrator.url).port);
    const before = process.memoryUsage().arrayBuffers;
    const outcomes = await Promise.all([0, 1, 2, 3].map(() => sendHugeFirstFrame(port, "/v1/workers/connect", 60 * 1024 * 1024)));
    for (const outcome of outcomes) expect(outcome).toMatchObject({ closed: true, closeCode: 1009 });
    // The orchestrator runs in this process: had it buffered the frames, 4 x 60 MiB would show here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  });
});

/**
 * Opens a websocket by hand and sends a frame header announcing `bytes`,
 * then streams zeros in small pieces (nothing here holds the whole frame).
 * Resolves with how the server answered.
 */
function sendHugeFirstFrame(port: number, path: string, bytes: number): Promise<{ closed: boolean; closeCode?: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let upgraded = false;
    let buffered = Buffer.alloc(0);
    const done = (result: { closed: boolean; closeCode?: number }) => {
      socket.destroy();
      resolve(result);
    };
    socket.on("error", () => done({ closed: true }));
    socket.on("close", () => done({ closed: true }));
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!upgraded) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = buffered.subarray(0, end).toString().startsWith("HTTP/1.1 101");
        buffered = buffered.subarray(end + 4);
        if (!upgraded) return done({ closed: true });
        const header = Buffer.alloc(14);
        header[0] = 0x81; // FIN + text
        header[1] = 0x80 | 127; // masked, 64-bit length
        header.writeBigUInt64BE(BigInt(bytes), 2);
        randomBytes(4).copy(header, 10);
        socket.write(header);
        const piece = Buffer.alloc(64 * 1024);
        let sent = 0;
        const pump = () => {
          while (sent < bytes && socket.writable) {
            sent += piece.byteLength;
            if (!socket.write(piece)) return void socket.once("drain", pump);
          }
        };
        pump();
      }
      // A close frame from the server: 0x88, length, then the 2-byte code.
      if (buffered.length >= 4 && buffered[0] === 0x88) done({ closed: true, closeCode: buffered.readUInt16BE(2) });
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}
