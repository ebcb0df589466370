import { execFile } from "node:child_process";
import { createServer } from "node:net";
import Docker from "dockerode";
import { DockerLabels } from "@tether/orchestrator";

export const DOCKER_SOCKET = process.env.TETHER_DOCKER_SOCKET ?? "/var/run/docker.sock";
export const IMAGES = { worker: "tether-worker:local", orchestrator: "tether-orchestrator:local", redis: "tether-redis:local" } as const;
/** Set by global-setup: this run's id, part of every orchestrator id the tests use. */
export const CONTAINER_RUN_ENV = "TETHER_CONTAINER_TEST_RUN";

export function dockerClient(): Docker {
  return new Docker({ socketPath: DOCKER_SOCKET });
}

/** An orchestrator id for the `tether.orchestrator` label, unique to this run and `name`. */
export function testOrchestratorId(name: string): string {
  return `it-${process.env[CONTAINER_RUN_ENV] ?? "norun"}-${name}`;
}

/** Containers carrying one label value. */
export async function containersWithLabel(docker: Docker, label: string, value: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
}

/** The one worker container of a session. */
export async function sessionContainer(docker: Docker, sessionId: string): Promise<Docker.ContainerInfo> {
  const found = await containersWithLabel(docker, DockerLabels.sessionId, sessionId);
  if (found.length !== 1) throw new Error(`expected one container for session ${sessionId}, found ${found.length}`);
  return found[0]!;
}

/** Polls until `check` holds (container removal has no event the tests can wait on over REST). */
export async function waitFor<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not true after ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Containers of this test run: worker containers of its orchestrators and compose projects named after it. */
export async function leftoverContainers(docker: Docker, runId: string): Promise<Docker.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true });
  const prefix = `it-${runId}-`;
  return all.filter(
    (c) => (c.Labels[DockerLabels.orchestrator] ?? "").startsWith(prefix) || (c.Labels["com.docker.compose.project"] ?? "").startsWith(`tether-${prefix}`),
  );
}

export async function removeContainers(docker: Docker, containers: readonly Docker.ContainerInfo[]): Promise<void> {
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
}

/** Runs a command; resolves with its output whatever the exit code. */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env: options.env ?? process.env, cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** PNG files start with these 8 bytes. */
export const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
