import { describe, expect, it } from "vitest";
import { sandboxEnvironment } from "./sandbox-environment.js";

describe("sandboxEnvironment", () => {
  const limits = { memoryMb: 512, maxProcesses: 64, cpuSeconds: 10, killRecord: "/run/tether/limit-kill.json" };
  const hostEnv = {
    PATH: "/root/.pyenv/shims:/usr/bin",
    HOME: "/root",
    PWD: "/srv/tether",
    TETHER_DATA_DIR: "/srv/tether/.tether",
    DATABASE_URL: "postgres://user:pw@db/x",
    LANG: "de_DE.UTF-8",
    LC_TIME: "C",
    TZ: "Europe/Berlin",
    OMP_NUM_THREADS: "2",
  };
  const env = sandboxEnvironment({
    request: { launchId: "lch_1", env: { TETHER_PYTHON: "/usr/bin/python3", TETHER_LOG_LEVEL: "warn" } },
    passEnv: ["OMP_NUM_THREADS", "UNSET_ONE"],
    orchestratorUrl: "ws+unix:///run/tether/gateway.sock:/v1/workers/connect",
    limits,
    hostEnv,
  });

  it("keeps only locale, time zone and the variables asked for from the host: nothing that names a host path or holds a credential", () => {
    expect(env).toMatchObject({ LANG: "de_DE.UTF-8", LC_TIME: "C", TZ: "Europe/Berlin", OMP_NUM_THREADS: "2" });
    for (const name of ["PWD", "TETHER_DATA_DIR", "DATABASE_URL", "UNSET_ONE"]) expect(env).not.toHaveProperty(name);
    expect(Object.values(env).join("\n")).not.toMatch(/\/root|\/srv\/tether/);
  });

  it("sets the sandbox's own PATH, HOME and user, and the worker's variables, never a join token", () => {
    expect(env).toMatchObject({
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/tmp",
      USER: "tether",
      TETHER_PYTHON: "/usr/bin/python3",
      TETHER_LOG_LEVEL: "warn",
      TETHER_ORCHESTRATOR_URL: "ws+unix:///run/tether/gateway.sock:/v1/workers/connect",
      TETHER_JOIN_TOKEN_FILE: "/tmp/.tether-join-token",
      TETHER_LAUNCH_ID: "lch_1",
      TETHER_WORKSPACE: "/mnt/data",
    });
    expect(JSON.parse(env.TETHER_SANDBOX_LIMITS!)).toEqual(limits);
    expect(env).not.toHaveProperty("TETHER_JOIN_TOKEN");
  });
});
