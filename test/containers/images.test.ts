import { describe, expect, it } from "vitest";
import { dockerClient, IMAGES, run } from "./docker-helpers.js";

describe("images", () => {
  const docker = dockerClient();

  it("worker image: tini as PID 1 in front of the worker, user node, workspace also at /mnt/data", async () => {
    const { Config } = await docker.getImage(IMAGES.worker).inspect();
    expect(Config.Entrypoint).toEqual(["/usr/bin/tini", "--", "node", "/app/worker/dist/main.js"]);
    expect(Config.User).toBe("node");
    expect(Config.WorkingDir).toBe("/workspace");
    const layout = await run("docker", [
      "run", "--rm", "--network", "none", "--read-only", "--entrypoint", "sh", IMAGES.worker,
      "-c", "id -u; readlink /mnt/data; stat -c %U /workspace; node --version",
    ]);
    expect(layout.code, layout.stderr).toBe(0);
    expect(layout.stdout).toMatch(/^1000\n\/workspace\nnode\nv20\./);
  });

  it("worker image: tini as PID 1 reaps orphaned children (a kernel whose Jupyter Server died does not linger as a zombie)", async () => {
    // Python spawns a shell that leaves an orphan behind and exits; the orphan is re-parented to PID 1.
    const zombies = (entrypoint: string[]) =>
      run("docker", [
        "run", "--rm", "--network", "none", "--read-only", "--entrypoint", entrypoint[0]!, IMAGES.worker, ...entrypoint.slice(1),
        "python3", "-c",
        "import glob, subprocess, time\n" +
          "subprocess.Popen(['sh', '-c', 'sleep 0.2 & exit 0']).wait()\n" +
          "time.sleep(1.5)\n" +
          "print(sum(1 for s in glob.glob('/proc/[0-9]*/status') if 'State:\\tZ' in open(s).read()))",
      ]);
    const withTini = await zombies(["/usr/bin/tini", "--"]);
    expect(withTini.code, withTini.stderr).toBe(0);
    expect(withTini.stdout.trim()).toBe("0");
    // The control: with Python itself as PID 1 nobody reaps the orphan.
    const withoutTini = await zombies(["/usr/bin/env"]);
    expect(withoutTini.stdout.trim()).toBe("1");
  });

  it("orchestrator image: Node 20 loads and uses the dependencies that declare node >=22 (the EBADENGINE warnings are harmless)", async () => {
    const script = [
      "const { ContainerAppsAPIClient } = await import('@azure/arm-appcontainers');",
      "const client = new ContainerAppsAPIClient({ getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 60000 }) }, '00000000-0000-0000-0000-000000000000');",
      "if (typeof client.jobs.beginStart !== 'function') throw new Error('no jobs client');",
      "const { default: Fastify } = await import('fastify');",
      "const app = Fastify(); app.get('/', (_req, reply) => reply.header('set-cookie', 'a=b; Path=/').send('ok'));",
      "const res = await app.inject({ url: '/', cookies: { c: 'd' } });",
      "if (res.cookies[0]?.name !== 'a') throw new Error('cookie parsing failed');",
      "console.log(process.version, res.body);",
    ].join(" ");
    const result = await run("docker", [
      "run", "--rm", "--network", "none", "--read-only", "-w", "/app/orchestrator", IMAGES.orchestrator,
      "node", "--input-type=module", "-e", script,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^v20\.\d+\.\d+ ok\n$/);
  });
});
