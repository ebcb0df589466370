import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { DockerLabels, DockerLauncher, type Launcher, type LaunchRequest } from "@tether/orchestrator";
import { startTestOrchestrator, type TestOrchestrator } from "../helpers/orchestrator.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";
import { StreamClient } from "../helpers/ws.js";
import { containersWithLabel, dockerClient, IMAGES, PNG_MAGIC, sessionContainer, testOrchestratorId, waitFor } from "./docker-helpers.js";

/** The real docker launcher, recording the join tokens it is handed so the tests can look for them. */
class RecordingLauncher implements Launcher {
  readonly kind = "docker";
  readonly tokens: string[] = [];
  constructor(private readonly inner: DockerLauncher) {}
  launch(request: LaunchRequest) {
    this.tokens.push(request.joinToken);
    return this.inner.launch(request);
  }
  stopAll() {
    return this.inner.stopAll();
  }
  reconcile() {
    return this.inner.reconcile();
  }
}

describe("docker launcher", () => {
  const docker = dockerClient();
  let orchestrator: TestOrchestrator;
  let launcher: RecordingLauncher | undefined;
  const port = () => Number(new URL(orchestrator.url).port);

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator(
      {
        TETHER_LAUNCHER: "docker",
        TETHER_DOCKER_ORCHESTRATOR_ID: testOrchestratorId("launcher"),
        TETHER_DOCKER_MEMORY: "1g",
        TETHER_DOCKER_PIDS_LIMIT: "256",
        // A lost worker must surface through the container's exit, long before the 3-interval reconnect hold (60 s) ends.
        TETHER_HEARTBEAT_INTERVAL_MS: "20000",
      },
      (config) => ({
        launcher: (logger) => (launcher = new RecordingLauncher(new DockerLauncher({ config: config.docker!, logger }))),
      }),
    );
  });

  afterAll(async () => {
    await orchestrator?.close();
    // stopAll() waited for each container's removal: none of this orchestrator's may be left.
    expect(await containersWithLabel(docker, DockerLabels.orchestrator, testOrchestratorId("launcher"))).toEqual([]);
  });

  it("runs code in its own container as uid 1000 on a read-only root under tini, and returns a matplotlib plot as PNG", async () => {
    const startedAt = Date.now();
    const session = await orchestrator.alice.createSession();
    const plot = await orchestrator.alice.execute(session.id, {
      code: [
        "import os, matplotlib.pyplot as plt",
        "print(os.getuid(), os.getcwd(), os.path.realpath('/mnt/data'), bool(os.statvfs('/').f_flag & os.ST_RDONLY))",
        "print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode())",
        "plt.plot([1, 4, 9, 16]); plt.show()",
      ].join("\n"),
    });
    console.log(`docker launcher: create session + first plot in ${Date.now() - startedAt} ms`);
    expect(plot).toMatchObject({ status: "ok", stdout: "1000 /workspace /workspace True\n/usr/bin/tini\n" });
    const png = Buffer.from(String(plot.outputs[0]?.data["image/png"]), "base64");
    expect(png.subarray(0, 8)).toEqual(PNG_MAGIC);
    expect(png.length).toBeGreaterThan(1000);

    const info = await docker.getContainer((await sessionContainer(docker, session.id)).Id).inspect();
    expect(info.Config.Image).toBe(IMAGES.worker);
    expect(info.Config.User).toBe("1000:1000");
    expect(info.HostConfig).toMatchObject({ NetworkMode: "none", ReadonlyRootfs: true, CapDrop: ["ALL"], Memory: 1024 ** 3, PidsLimit: 256, NanoCpus: 1e9 });
    expect(info.Config.Labels).toMatchObject({ [DockerLabels.orchestrator]: testOrchestratorId("launcher"), [DockerLabels.sessionId]: session.id });

    await orchestrator.alice.deleteSession(session.id);
    await waitFor("the container is removed with its session", () => containersWithLabel(docker, DockerLabels.sessionId, session.id), (list) => list.length === 0);
  });

  it("keeps two sessions' files and processes apart", async () => {
    const [a, b] = await Promise.all([orchestrator.alice.createSession(), orchestrator.alice.createSession()]);
    const wrote = await orchestrator.alice.execute(a.id, { code: "open('/mnt/data/secret-a.txt', 'w').write('only for a')\nprint(open('secret-a.txt').read())" });
    expect(wrote).toMatchObject({ status: "ok", stdout: "only for a\n" });
    const look = await orchestrator.alice.execute(b.id, {
      code: [
        "import glob, os",
        "hits = [p for root in ('/workspace', '/mnt/data/', '/tmp', '/home/node', '/run/tether') for p in glob.glob(root + '/**/secret-a*', recursive=True)]",
        "hits += glob.glob('/proc/*/root/workspace/secret-a.txt') + glob.glob('/proc/*/cwd/secret-a.txt')",
        "print(hits, sorted(os.listdir('/workspace')))",
        "print(max(int(p) for p in os.listdir('/proc') if p.isdigit()) < 1000)",
      ].join("\n"),
    });
    expect(look).toMatchObject({ status: "ok", stdout: "[] []\nTrue\n" });
    expect((await orchestrator.alice.listFiles(b.id)).files).toEqual([]);
    expect((await orchestrator.alice.listFiles(a.id)).files.map((f) => f.path)).toEqual(["secret-a.txt"]);
    await Promise.all([orchestrator.alice.deleteSession(a.id), orchestrator.alice.deleteSession(b.id)]);
  });

  it("gives user code no network and no join token, and a relay socket that refuses everything but the gateway upgrade", async () => {
    const session = await orchestrator.alice.createSession();
    const probe = await orchestrator.alice.execute(session.id, {
      code: [
        "import json, os, socket",
        "r = {}",
        "try:",
        `    socket.create_connection(('127.0.0.1', ${port()}), timeout=3); r['tcp'] = 'connected'`,
        "except OSError as e:",
        "    r['tcp'] = type(e).__name__",
        "r['interfaces'] = sorted(name for _, name in socket.if_nameindex())",
        "def read(path):",
        "    try:",
        "        return open(path, 'rb').read().decode('utf8', 'replace')",
        "    except OSError as e:",
        "        return 'unreadable: ' + type(e).__name__",
        "r['self_environ'] = read('/proc/self/environ')",
        "r['pid1_environ'] = read('/proc/1/environ')",
        "r['all_procs'] = ''.join(read(f'/proc/{p}/environ') + read(f'/proc/{p}/cmdline') for p in os.listdir('/proc') if p.isdigit())",
        "s = socket.socket(socket.AF_UNIX)",
        "s.connect('/run/tether/orchestrator.sock')",
        `s.sendall(b'GET /v1/sessions HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ${orchestrator.keys.alice}\\r\\n\\r\\n')`,
        "r['relay'] = s.recv(200).decode()",
        "print(json.dumps(r))",
      ].join("\n"),
    });
    expect(probe.status).toBe("ok");
    const r = JSON.parse(probe.stdout) as Record<string, string | string[]>;
    expect(r.tcp).toBe("ConnectionRefusedError");
    expect(r.interfaces).toEqual(["lo"]);
    expect(r.relay).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.pid1_environ).toContain("TETHER_LAUNCH_ID=");
    const tokens = launcher?.tokens ?? [];
    expect(tokens.length).toBeGreaterThan(0);
    for (const where of ["self_environ", "pid1_environ", "all_procs"]) {
      expect(r[where]).not.toContain("TETHER_JOIN_TOKEN=");
      for (const token of tokens) expect(r[where], where).not.toContain(token);
    }
    // Nor in what the engine keeps about the container (docker inspect).
    const inspected = JSON.stringify(await docker.getContainer((await sessionContainer(docker, session.id)).Id).inspect());
    expect(inspected).toContain("TETHER_JOIN_TOKEN_STDIN=1");
    expect(inspected).not.toContain("TETHER_JOIN_TOKEN=");
    for (const token of tokens) expect(inspected).not.toContain(token);
    await orchestrator.alice.deleteSession(session.id);
  });

  it("ends the running execution with worker_lost when its container is killed, stops the session, and resumes it on the next execute", async () => {
    const session: SessionInfo = await orchestrator.alice.createSession();
    const first = await sessionContainer(docker, session.id);
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      stream.send({ type: "execute", requestId: "nap", code: "import time\nprint('napping', flush=True)\ntime.sleep(60)" });
      await stream.nextMessage((m) => m.type === "stream" && m.requestId === "nap");
      await docker.getContainer(first.Id).kill();
      const trace = await stream.collectUntilDone("nap", 30_000);
      expect(trace.done).toMatchObject({ status: "worker_lost", stateLost: true, failure: { code: ErrorCodes.WORKER_LOST } });
      expect(trace.done?.failure?.message).toMatch(/exit code 137/);
      await stream.nextMessage((m) => m.type === "session_status" && m.phase === "stopped");
    } finally {
      await stream.close();
    }
    expect(await orchestrator.alice.getSession(session.id)).toMatchObject({ status: "stopped", stopReason: { kind: "worker_lost" } });
    await waitFor("the killed container is removed", () => containersWithLabel(docker, DockerLabels.launchId, first.Labels[DockerLabels.launchId]!), (l) => l.length === 0);

    const resumed = await orchestrator.alice.execute(session.id, { code: "print('back')" });
    expect(resumed).toMatchObject({ status: "ok", stdout: "back\n", resumed: true, stateLost: true });
    expect((await sessionContainer(docker, session.id)).Id).not.toBe(first.Id);
    await orchestrator.alice.deleteSession(session.id);
  });
});

describe("docker launcher: a worker whose link drops", () => {
  let proxy: TcpProxy;
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    proxy = await TcpProxy.start();
    // The relay dials the orchestrator URL: here a proxy that can cut the link while the container lives on.
    orchestrator = await startTestOrchestrator({
      TETHER_LAUNCHER: "docker",
      TETHER_DOCKER_ORCHESTRATOR_ID: testOrchestratorId("relay-resume"),
      TETHER_PUBLIC_URL: `ws://127.0.0.1:${proxy.port}`,
      TETHER_HEARTBEAT_INTERVAL_MS: "1000",
    });
    proxy.upstreamPort = Number(new URL(orchestrator.url).port);
  });

  afterAll(async () => {
    await orchestrator?.close();
    await proxy?.close();
  });

  it("redials through its relay socket and resumes without losing or repeating output", async () => {
    const session = await orchestrator.alice.createSession();
    const container = await sessionContainer(dockerClient(), session.id);
    const client = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const acceptedBefore = proxy.acceptedAt.length;
      client.send({ type: "execute", requestId: "lines", code: "import time\nfor i in range(3000):\n    print(f'line {i}', flush=True)\n    if i % 100 == 0: time.sleep(0.02)" });
      const running = client.collectUntilDone("lines");
      // Watch the socket without taking messages off the trace.
      await new Promise<void>((resolve) => {
        const listener = (raw: Buffer) => {
          if (!raw.toString().includes("line 500\\n")) return;
          client.socket.off("message", listener);
          resolve();
        };
        client.socket.on("message", listener);
      });
      expect(proxy.cutAll()).toBe(1);
      const trace = await running;
      expect(trace.done).toMatchObject({ status: "ok", stateLost: false });
      expect(trace.text("stdout")).toBe(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join(""));
      expect(proxy.acceptedAt.length - acceptedBefore).toBe(1);
      expect((await sessionContainer(dockerClient(), session.id)).Id).toBe(container.Id);
    } finally {
      await client.close();
      await orchestrator.alice.deleteSession(session.id);
    }
  });
});

describe("docker launcher at orchestrator start", () => {
  const docker = dockerClient();

  async function sleeper(orchestratorId: string, launchId: string): Promise<Docker.Container> {
    const container = await docker.createContainer({
      Image: IMAGES.worker,
      Entrypoint: ["sleep", "300"],
      Labels: { [DockerLabels.managedBy]: "tether", [DockerLabels.orchestrator]: orchestratorId, [DockerLabels.launchId]: launchId },
      HostConfig: { NetworkMode: "none", ReadonlyRootfs: true },
    });
    await container.start();
    return container;
  }

  it("removes the containers an earlier orchestrator with its id left, and only those", async () => {
    const mine = await sleeper(testOrchestratorId("reconcile"), "lch_orphan");
    const other = await sleeper(testOrchestratorId("someone-else"), "lch_not_mine");
    try {
      const orchestrator = await startTestOrchestrator({ TETHER_LAUNCHER: "docker", TETHER_DOCKER_ORCHESTRATOR_ID: testOrchestratorId("reconcile") });
      await orchestrator.close();
      await expect(mine.inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect((await other.inspect()).State.Running).toBe(true);
    } finally {
      await mine.remove({ force: true }).catch(() => undefined);
      await other.remove({ force: true }).catch(() => undefined);
    }
  });

  it("refuses to start when the worker image is not in the engine", async () => {
    await expect(
      startTestOrchestrator({ TETHER_LAUNCHER: "docker", TETHER_DOCKER_WORKER_IMAGE: "tether-worker:does-not-exist", TETHER_DOCKER_ORCHESTRATOR_ID: testOrchestratorId("noimage") }),
    ).rejects.toMatchObject({ code: ErrorCodes.LAUNCH_NOT_FOUND });
  });
});
