import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type ExecuteResponse, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { KERNEL_PID_CODE, describeProcesses, hostPidOf, isAlive, processesWithEnvMarker, waitForExit, waitUntilNoProcesses } from "./helpers/processes.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";
import { StreamClient } from "./helpers/ws.js";

/**
 * Each isolation point of the default (bubblewrap) local launcher, proved from
 * kernel code through the real stack: orchestrator, relay, sandbox, worker,
 * Jupyter Server, ipykernel.
 */

const MEMORY_MB = 768;
const MAX_PROCESSES = 64;
/** Not a real key: what the data dir's key file holds in this test, to look for from inside. */
const KEY_FILE_MARKER = "tk_sandbox_test_must_not_leak";

/** Polls GET /v1/sessions/:id (it has no push) until `done` holds. */
async function waitForSession(orchestrator: TestOrchestrator, id: string, done: (info: SessionInfo) => boolean, timeoutMs = 30_000): Promise<SessionInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await orchestrator.alice.getSession(id);
    if (done(info)) return info;
    if (Date.now() > deadline) throw new Error(`Session ${id} did not get there; last: ${JSON.stringify(info)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs `code` and returns the JSON its last stdout line printed. */
async function probe<T>(orchestrator: TestOrchestrator, sessionId: string, code: string): Promise<T> {
  const res = await orchestrator.alice.execute(sessionId, { code: `import json, os\n${code}` });
  expect(res.status, JSON.stringify(res.error ?? res.failure)).toBe("ok");
  const last = res.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as T;
}

describe("the local launcher's sandbox, seen from kernel code", () => {
  let proxy: TcpProxy;
  let orchestrator: TestOrchestrator;
  let a: SessionInfo;
  let b: SessionInfo;

  beforeAll(async () => {
    // Workers' relays dial this proxy, which lets the test read each worker's hello (its join token) off the wire.
    proxy = await TcpProxy.start();
    orchestrator = await startTestOrchestrator({
      TETHER_PUBLIC_URL: `ws://127.0.0.1:${proxy.port}`,
      TETHER_SANDBOX_MEMORY_MB: String(MEMORY_MB),
      TETHER_SANDBOX_MAX_PROCESSES: String(MAX_PROCESSES),
    });
    proxy.upstreamPort = Number(new URL(orchestrator.url).port);
    await writeFile(`${orchestrator.dataDir}/api-key`, `${KEY_FILE_MARKER}\n`, { mode: 0o600 });
    [a, b] = await Promise.all([orchestrator.alice.createSession(), orchestrator.alice.createSession()]);
  });

  afterAll(async () => {
    await orchestrator?.close();
    await proxy?.close();
  });

  it("cannot read the data dir's API key file, nor find the data dir anywhere in its filesystem", async () => {
    const dataDir = orchestrator.dataDir;
    const seen = await probe<{ read: string; exists: boolean; names: string[]; keyFiles: string[] }>(
      orchestrator,
      a.id,
      [
        "try:",
        `    read = open(${JSON.stringify(`${dataDir}/api-key`)}).read()`,
        "except OSError as e:",
        "    read = type(e).__name__",
        "names, key_files = [], []",
        "for root, dirs, files in os.walk('/'):",
        "    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ('/proc', '/usr', '/dev', '/sys')]",
        `    names += [n for n in dirs + files if ${JSON.stringify(basename(dataDir))} in n]`,
        "    key_files += [os.path.join(root, f) for f in files if f == 'api-key']",
        `print(json.dumps({'read': read, 'exists': os.path.exists(${JSON.stringify(dataDir)}), 'names': names, 'keyFiles': key_files}))`,
      ].join("\n"),
    );
    expect(existsSync(`${dataDir}/api-key`)).toBe(true);
    expect(seen).toEqual({ read: "FileNotFoundError", exists: false, names: [], keyFiles: [] });
  });

  it("cannot list or read another session's workspace, nor its /tmp", async () => {
    await orchestrator.alice.execute(a.id, { code: "open('secret-of-a.txt', 'w').write('for a only')\nopen('/tmp/tmp-of-a.txt', 'w').write('a')" });
    const launchOfA = (await orchestrator.alice.execute(a.id, { code: "import os\nprint(os.environ['TETHER_LAUNCH_ID'])" })).stdout.trim();
    const hostPathOfA = `${orchestrator.dataDir}/workspaces/${launchOfA}`;
    expect(existsSync(`${hostPathOfA}/secret-of-a.txt`)).toBe(true);

    const seen = await probe<{ mnt: string[]; data: string[]; direct: boolean; workspaces: string; found: string[]; tmp: boolean }>(
      orchestrator,
      b.id,
      [
        "try:",
        `    workspaces = str(os.listdir(${JSON.stringify(`${orchestrator.dataDir}/workspaces`)}))`,
        "except OSError as e:",
        "    workspaces = type(e).__name__",
        "found = []",
        "for root, dirs, files in os.walk('/'):",
        "    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ('/proc', '/usr', '/dev', '/sys')]",
        "    found += [os.path.join(root, f) for f in files if f == 'secret-of-a.txt']",
        "print(json.dumps({'mnt': os.listdir('/mnt'), 'data': os.listdir('/mnt/data'), 'workspaces': workspaces, 'found': found,",
        `    'direct': os.path.exists(${JSON.stringify(`${hostPathOfA}/secret-of-a.txt`)}), 'tmp': os.path.exists('/tmp/tmp-of-a.txt')}))`,
      ].join("\n"),
    );
    expect(seen).toEqual({ mnt: ["data"], data: [], workspaces: "FileNotFoundError", found: [], direct: false, tmp: false });
  });

  it("sees only its own sandbox's processes in /proc: bwrap's init, its worker, Jupyter Server and itself", async () => {
    const seen = await probe<{ pid: number; cmdlines: string[] }>(
      orchestrator,
      a.id,
      [
        "cmdlines = [open(f'/proc/{p}/cmdline').read().replace('\\0', ' ') for p in sorted(os.listdir('/proc'), key=lambda p: int(p) if p.isdigit() else 0) if p.isdigit()]",
        "print(json.dumps({'pid': os.getpid(), 'cmdlines': cmdlines}))",
      ].join("\n"),
    );
    expect(seen.cmdlines).toHaveLength(4);
    expect(seen.cmdlines[0]).toMatch(/^\S*bwrap /);
    expect(seen.cmdlines.filter((c) => c.includes("worker/dist/main.js") && !c.includes("bwrap"))).toHaveLength(1);
    expect(seen.cmdlines.filter((c) => c.includes("ipykernel_launcher"))).toHaveLength(1);
    // The host's processes, the test runner and the other session's kernel are not there.
    expect(seen.cmdlines.join("\n")).not.toMatch(/vitest|orchestrator/);
    // Yet the host sees the kernel (a child PID namespace is visible from the parent), carrying its launch id.
    const hostPid = await hostPidOf((await orchestrator.alice.execute(a.id, { code: KERNEL_PID_CODE })).stdout);
    expect(hostPid).not.toBe(seen.pid);
    const launchId = (await orchestrator.alice.execute(a.id, { code: "import os\nprint(os.environ['TETHER_LAUNCH_ID'])" })).stdout.trim();
    expect((await processesWithEnvMarker("TETHER_LAUNCH_ID", launchId)).map((p) => p.pid)).toContain(hostPid);
  });

  it("has no network: the orchestrator's port is refused, DNS and egress fail, only loopback exists", async () => {
    const port = Number(new URL(orchestrator.url).port);
    const seen = await probe<Record<string, string>>(
      orchestrator,
      a.id,
      [
        "import socket",
        "def attempt(f):",
        "    try:",
        "        f()",
        "        return 'ok'",
        "    except Exception as e:",
        "        return type(e).__name__",
        "out = {",
        `    'orchestrator': attempt(lambda: socket.create_connection(('127.0.0.1', ${port}), timeout=3)),`,
        "    'dns': attempt(lambda: socket.getaddrinfo('example.com', 443)),",
        "    'egress': attempt(lambda: socket.create_connection(('1.1.1.1', 53), timeout=3)),",
        "    'interfaces': ','.join(name for _, name in socket.if_nameindex()),",
        "}",
        "print(json.dumps(out))",
      ].join("\n"),
    );
    expect(seen).toEqual({ orchestrator: "ConnectionRefusedError", dns: "gaierror", egress: "OSError", interfaces: "lo" });
  });

  it("cannot find the join token: not in any process's environment, not in a file", async () => {
    const tokens = proxy.firstFramesFromWorkers().flatMap((frame) => {
      const hello = JSON.parse(frame) as { type?: string; token?: string };
      return hello.type === "hello" && hello.token ? [hello.token] : [];
    });
    // Both sessions' workers said hello through the relay and the proxy.
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    const seen = await probe<{ hits: string[]; environs: number; files: string[] }>(
      orchestrator,
      a.id,
      [
        // Reversed in the code: IPython keeps each cell's source in its history file, in /tmp.
        `tokens = [t[::-1] for t in ${JSON.stringify(tokens.map((t) => [...t].reverse().join("")))}]`,
        "hits, environs, files = [], 0, []",
        "for p in [p for p in os.listdir('/proc') if p.isdigit()]:",
        "    environ = open(f'/proc/{p}/environ', 'rb').read().decode()",
        "    environs += 1",
        "    hits += [f'/proc/{p}/environ' for t in tokens if t in environ]",
        "for root, dirs, names in os.walk('/'):",
        "    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ('/proc', '/usr', '/dev', '/sys')]",
        "    for name in names:",
        "        path = os.path.join(root, name)",
        "        if 'join' in name and 'token' in name: files.append(path)",
        "        try:",
        "            if os.path.getsize(path) < 1_000_000 and any(t.encode() in open(path, 'rb').read() for t in tokens): hits.append(path)",
        "        except OSError:",
        "            pass",
        "print(json.dumps({'hits': hits, 'environs': environs, 'files': files}))",
      ].join("\n"),
    );
    // /proc/1 (bwrap), the worker, Jupyter Server and the kernel: all readable, none holds it.
    expect(seen.environs).toBe(4);
    expect(seen).toMatchObject({ hits: [], files: [] });
  });

  it("works in /mnt/data, the workspace: files written there are what the files API serves, and uploads appear there", async () => {
    const written = await orchestrator.alice.execute(a.id, {
      code: "import os\nos.makedirs('out', exist_ok=True)\nopen('/mnt/data/out/result.txt', 'w').write('from the kernel')\nprint(os.getcwd(), os.environ['HOME'])",
    });
    expect(written.stdout).toBe("/mnt/data /tmp\n");
    expect((await orchestrator.alice.listFiles(a.id)).files.map((f) => f.path)).toContain("out/result.txt");
    expect((await orchestrator.alice.getFile(a.id, "out/result.txt")).text()).toBe("from the kernel");
    expect((await orchestrator.alice.putFile(a.id, "in/data.csv", "x,y\n1,2\n")).status).toBe(200);
    const read = await orchestrator.alice.execute(a.id, { code: "print(open('/mnt/data/in/data.csv').read(), end='')" });
    expect(read.stdout).toBe("x,y\n1,2\n");
  });

  it("cannot write to the system: /, /usr and /etc are read-only", async () => {
    const seen = await probe<Record<string, string>>(
      orchestrator,
      a.id,
      [
        "import errno",
        "out = {}",
        "for path in ('/usr/lib/tether-was-here', '/etc/tether-was-here', '/tether-was-here', '/bin/tether-was-here'):",
        "    try:",
        "        open(path, 'w').write('x')",
        "        out[path] = 'written'",
        "    except OSError as e:",
        "        out[path] = errno.errorcode[e.errno]",
        "print(json.dumps(out))",
      ].join("\n"),
    );
    expect(seen).toEqual({ "/usr/lib/tether-was-here": "EROFS", "/etc/tether-was-here": "EROFS", "/tether-was-here": "EROFS", "/bin/tether-was-here": "EROFS" });
    expect(existsSync("/usr/lib/tether-was-here")).toBe(false);
  });

  it("kills a kernel that goes over the memory limit with a kernel_died reason naming the limit, and the session carries on", async () => {
    const stream = await StreamClient.open(orchestrator.url, a.id, orchestrator.keys.alice);
    try {
      await stream.run("before", "kept = 'state before the kill'");
      // Under the per-process backstop (2x the limit), over the session's limit: the memory watch kills it.
      const trace = await stream.run("hog", `hog = bytearray(${MEMORY_MB + 512} * 1024 * 1024)\nprint('survived')`);
      const died = trace.ofType("kernel_died");
      expect(died).toHaveLength(1);
      expect(died[0]!.reason).toMatch(new RegExp(`^the kernel was killed: the session's processes used \\d+ MiB, over its memory limit of ${MEMORY_MB} MiB \\(TETHER_SANDBOX_MEMORY_MB\\)$`));
      expect(trace.text("stdout")).toBe("");
      expect(trace.done).toMatchObject({ status: "kernel_died", kernelRestarted: true, stateLost: true, failure: { code: ErrorCodes.KERNEL_DIED } });
      expect(trace.done.failure?.message).toContain(`memory limit of ${MEMORY_MB} MiB`);
      const after = await stream.run("after", "print('kept' in globals(), 6 * 7)");
      expect(after.done.status).toBe("ok");
      expect(after.text("stdout")).toBe("False 42\n");
    } finally {
      await stream.close();
    }
  });

  it("refuses one allocation larger than the per-process backstop with MemoryError, and the kernel keeps its state", async () => {
    await orchestrator.alice.execute(b.id, { code: "kept = 41" });
    const res: ExecuteResponse = await orchestrator.alice.execute(b.id, { code: `x = bytearray(${4 * MEMORY_MB} * 1024 * 1024)` });
    expect(res).toMatchObject({ status: "error", kernelRestarted: false, error: { name: "MemoryError" } });
    expect((await orchestrator.alice.execute(b.id, { code: "print(kept + 1)" })).stdout).toBe("42\n");
  });

  it("stops a fork bomb at the process limit (bounded: at most 300 forks, all killed), and the kernel keeps working", async () => {
    const seen = await probe<{ forked: number; error: string; errno: number }>(
      orchestrator,
      b.id,
      [
        "import time",
        "children, error, code = [], '', 0",
        "for _ in range(300):",
        "    try:",
        "        pid = os.fork()",
        "    except OSError as e:",
        "        error, code = type(e).__name__, e.errno",
        "        break",
        "    if pid == 0:",
        "        time.sleep(30)",
        "        os._exit(0)",
        "    children.append(pid)",
        "for pid in children:",
        "    os.kill(pid, 9)",
        "for pid in children:",
        "    os.waitpid(pid, 0)",
        "print(json.dumps({'forked': len(children), 'error': error, 'errno': code}))",
      ].join("\n"),
    );
    // The worker, Jupyter Server and the kernel already use ~30 of the 64 (threads count too).
    expect(seen.forked).toBeGreaterThan(0);
    expect(seen.forked).toBeLessThan(MAX_PROCESSES);
    expect(seen).toMatchObject({ error: "BlockingIOError", errno: 11 });
    expect((await orchestrator.alice.execute(b.id, { code: "print('still here')" })).stdout).toBe("still here\n");
  });

  it("cannot use the gateway socket for anything but the worker websocket: the relay answers 403", async () => {
    const seen = await probe<Record<string, string>>(
      orchestrator,
      a.id,
      [
        "import socket",
        "def ask(request):",
        "    s = socket.socket(socket.AF_UNIX)",
        "    s.connect('/run/tether/gateway.sock')",
        "    s.sendall(request.encode())",
        "    answer = b''",
        "    while chunk := s.recv(4096):",
        "        answer += chunk",
        "    return answer.decode().split('\\r\\n')[0]",
        "out = {",
        `    'sessions': ask('GET /v1/sessions HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ${orchestrator.keys.alice}\\r\\n\\r\\n'),`,
        "    'healthz': ask('GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'),",
        "    'plain': ask('GET /v1/workers/connect HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'),",
        "    'smuggled': ask('GET /v1/workers/connect/../../sessions HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n\\r\\n'),",
        "}",
        "print(json.dumps(out))",
      ].join("\n"),
    );
    expect(seen).toEqual({ sessions: "HTTP/1.1 403 Forbidden", healthz: "HTTP/1.1 403 Forbidden", plain: "HTTP/1.1 403 Forbidden", smuggled: "HTTP/1.1 403 Forbidden" });
  });

  it("ends the worker when its Jupyter Server is killed (a limit may pick it), and the next execute resumes on a new worker", async () => {
    const session = await orchestrator.alice.createSession();
    await orchestrator.alice.execute(session.id, { code: "kept = 1" });
    // Jupyter Server is the kernel's parent: its host pid is the kernel's PPid.
    const kernel = await hostPidOf((await orchestrator.alice.execute(session.id, { code: KERNEL_PID_CODE })).stdout);
    const server = Number(/^PPid:\s*(\d+)$/m.exec(await readFile(`/proc/${kernel}/status`, "utf8"))?.[1]);
    expect((await readFile(`/proc/${server}/cmdline`, "utf8")).replaceAll("\0", " ")).toContain("jupyter_server.serverapp");
    process.kill(server, "SIGKILL");
    const stopped = await waitForSession(orchestrator, session.id, (info) => info.status === "stopped");
    expect(stopped.stopReason).toMatchObject({ kind: "worker_lost" });
    const resumed = await orchestrator.alice.execute(session.id, { code: "print('kept' in globals())" });
    expect(resumed).toMatchObject({ status: "ok", stdout: "False\n", resumed: true, stateLost: true });
    await orchestrator.alice.deleteSession(session.id);
  });

  it("leaves nothing behind when the session is deleted, not even a process that left its group and cleared its environment", async () => {
    const session = await orchestrator.alice.createSession();
    const kernel = await hostPidOf((await orchestrator.alice.execute(session.id, { code: KERNEL_PID_CODE })).stdout);
    const launchId = (await orchestrator.alice.execute(session.id, { code: "import os\nprint(os.environ['TETHER_LAUNCH_ID'])" })).stdout.trim();
    // A grandchild in its own session, exec'ed with an empty environment: no TETHER_LAUNCH_ID for the sweep to find.
    const escapee = await orchestrator.alice.execute(session.id, {
      code: [
        "import os, time",
        "r, w = os.pipe()",
        "if os.fork() == 0:",
        "    os.setsid()",
        "    if os.fork() == 0:",
        "        os.write(w, (os.readlink('/proc/self/ns/pid') + ' ' + str(os.getpid())).encode())",
        "        os.execve('/bin/sleep', ['sleep', '600'], {})",
        "    os._exit(0)",
        "print(os.read(r, 100).decode())",
      ].join("\n"),
    });
    const sleeper = await hostPidOf(escapee.stdout);
    expect(await isAlive(sleeper)).toBe(true);
    expect((await processesWithEnvMarker("TETHER_LAUNCH_ID", launchId)).map((p) => p.pid)).not.toContain(sleeper);

    await orchestrator.alice.deleteSession(session.id);
    expect(await waitForExit(kernel, 10_000)).toBe(true);
    expect(await waitForExit(sleeper, 10_000)).toBe(true);
    const left = await waitUntilNoProcesses(() => processesWithEnvMarker("TETHER_LAUNCH_ID", launchId), 10_000);
    expect(left, describeProcesses(left)).toEqual([]);
    expect(existsSync(`${orchestrator.dataDir}/run/${launchId}`)).toBe(false);
    expect(existsSync(`${orchestrator.dataDir}/workspaces/${launchId}`)).toBe(false);
  });
});

describe("the sandbox's CPU time limit", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SANDBOX_CPU_SECONDS: "3" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("kills a kernel that spins past it with a kernel_died reason naming the limit", async () => {
    const session = await orchestrator.alice.createSession();
    const res = await orchestrator.alice.execute(session.id, { code: "while True:\n    pass", timeoutMs: 30_000 });
    expect(res).toMatchObject({ status: "kernel_died", kernelRestarted: true, failure: { code: ErrorCodes.KERNEL_DIED } });
    expect(res.failure?.message).toContain("the kernel was killed: it used more than its CPU time limit of 3 s (TETHER_SANDBOX_CPU_SECONDS");
    expect((await orchestrator.alice.execute(session.id, { code: "print('fresh budget')" })).stdout).toBe("fresh budget\n");
    await orchestrator.alice.deleteSession(session.id);
  });
});

describe("TETHER_SANDBOX=off", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SANDBOX: "off" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("runs the worker as a plain child process that got its join token in a file it removed, not in its environment", async () => {
    const session = await orchestrator.alice.createSession();
    const seen = await probe<{ cwd: string; launchId: string; tokenVar: boolean; tokenFile: string; fileExists: boolean; pid1: string }>(
      orchestrator,
      session.id,
      [
        "print(json.dumps({'cwd': os.getcwd(), 'launchId': os.environ['TETHER_LAUNCH_ID'], 'tokenVar': 'TETHER_JOIN_TOKEN' in os.environ,",
        "    'tokenFile': os.environ.get('TETHER_JOIN_TOKEN_FILE', ''), 'fileExists': os.path.exists(os.environ.get('TETHER_JOIN_TOKEN_FILE', '/nonexistent')),",
        "    'pid1': open('/proc/1/cmdline').read().split('\\0')[0]}))",
      ].join("\n"),
    );
    // The host's view: the real workspace path, the host's PID 1.
    expect(seen.cwd).toBe(`${orchestrator.dataDir}/workspaces/${seen.launchId}`);
    expect(seen.pid1).not.toMatch(/bwrap/);
    expect(seen).toMatchObject({ tokenVar: false, tokenFile: `${orchestrator.dataDir}/run/${seen.launchId}/join-token`, fileExists: false });
    await orchestrator.alice.deleteSession(session.id);
    expect(existsSync(`${orchestrator.dataDir}/run/${seen.launchId}`)).toBe(false);
  });
});
