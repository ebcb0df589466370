import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo } from "@tether/shared";
import { probe } from "./helpers/kernel-probe.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { KERNEL_PID_CODE, hostPidOf, processesWithEnvMarker } from "./helpers/processes.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";

/**
 * Each isolation point of the default (bubblewrap) local launcher, proved from
 * kernel code through the real stack: orchestrator, relay, sandbox, worker,
 * Jupyter Server, ipykernel.
 */

/** Not a real key: what the data dir's key file holds in this test, to look for from inside. */
const KEY_FILE_MARKER = "tk_sandbox_test_must_not_leak";

describe("the local launcher's sandbox, seen from kernel code", () => {
  let proxy: TcpProxy;
  let orchestrator: TestOrchestrator;
  let a: SessionInfo;
  let b: SessionInfo;

  beforeAll(async () => {
    // Workers' relays dial this proxy, which lets the test read each worker's hello (its join token) off the wire.
    proxy = await TcpProxy.start();
    orchestrator = await startTestOrchestrator({ TETHER_PUBLIC_URL: `ws://127.0.0.1:${proxy.port}` });
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

  it("keeps each kernel's IPython history its own: workers here share HOME, and one history file let a session read another's code", async () => {
    const [writer, reader] = await Promise.all([orchestrator.alice.createSession(), orchestrator.alice.createSession()]);
    const marker = `history_marker_${Date.now()}_${process.pid}`;
    await orchestrator.alice.execute(writer.id, { code: `${marker} = 1` });
    await orchestrator.alice.execute(writer.id, { code: "import time; time.sleep(0.5)" });
    // The writer's own history still works (%history reads it)...
    const own = await orchestrator.alice.execute(writer.id, { code: "print([source for _, _, source in get_ipython().history_manager.get_range()])" });
    expect(own.stdout).toContain(`${marker} = 1`);
    // ...and another kernel of the machine cannot find it.
    // (The pattern is built at run time: the reader's own cell, in its history too, must not contain the marker.)
    const [head, tail] = [marker.slice(0, 8), marker.slice(8)];
    const other = await orchestrator.alice.execute(reader.id, { code: `print(len(list(get_ipython().history_manager.search('*' + '${head}' + '${tail}' + '*'))))` });
    expect(other).toMatchObject({ status: "ok", stdout: "0\n" });
    await Promise.all([orchestrator.alice.deleteSession(writer.id), orchestrator.alice.deleteSession(reader.id)]);
  });
});
