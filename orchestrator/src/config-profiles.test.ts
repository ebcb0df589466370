import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { DEFAULT_PROFILE, profileNamed } from "./config-profiles.js";
import { ErrorCodes } from "./errors.js";

const K8S = { TETHER_LAUNCHER: "kubernetes", TETHER_K8S_WORKER_IMAGE: "tether-worker:test", TETHER_PUBLIC_URL: "ws://tether.test:8080" };

function configError(env: Record<string, string>): { code: string; message: string; hint?: string } {
  try {
    loadConfig(env);
  } catch (error) {
    return error as { code: string; message: string; hint?: string };
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("worker profiles (TETHER_PROFILES, TETHER_PROFILES_FILE)", () => {
  it("always has an empty default profile, and reads the configured ones by name", () => {
    expect([...loadConfig({}).profiles.values()]).toEqual([{ name: DEFAULT_PROFILE }]);
    const profiles = loadConfig({
      ...K8S,
      TETHER_PROFILES: JSON.stringify({ default: { cpu: 1, memoryMb: 2048 }, gpu: { image: "registry.test/tether-worker:cuda", cpu: 4, memoryMb: 16384, gpu: 1, nodeSelector: { "tether.dev/pool": "gpu" }, env: { TETHER_PYTHON: "/opt/conda/bin/python" } } }),
    }).profiles;
    expect(profiles.get("default")).toEqual({ name: "default", cpu: 1, memoryMb: 2048 });
    expect(profiles.get("gpu")).toEqual({
      name: "gpu",
      image: "registry.test/tether-worker:cuda",
      cpu: 4,
      memoryMb: 16384,
      gpu: 1,
      nodeSelector: { "tether.dev/pool": "gpu" },
      env: { TETHER_PYTHON: "/opt/conda/bin/python" },
    });
  });

  it("reads them from TETHER_PROFILES_FILE, and refuses both variables at once or a file it cannot read", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tether-profiles-"));
    try {
      const file = path.join(dir, "profiles.json");
      await writeFile(file, JSON.stringify({ big: { cpu: 2, memoryMb: 4096 } }));
      expect(loadConfig({ TETHER_LAUNCHER: "docker", TETHER_PROFILES_FILE: file }).profiles.get("big")).toEqual({ name: "big", cpu: 2, memoryMb: 4096 });
      expect(configError({ TETHER_PROFILES_FILE: file, TETHER_PROFILES: "{}" }).message).toContain("not both");
      const missing = configError({ TETHER_PROFILES_FILE: path.join(dir, "nope.json") });
      expect(missing.code).toBe(ErrorCodes.CONFIG_INVALID);
      expect(missing.message).toContain("TETHER_PROFILES_FILE");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the variable, the profile and the field of a bad value", () => {
    const cases: [string, string][] = [
      ["{not json", "not valid JSON"],
      [JSON.stringify({ gpu: { memoryMb: "lots" } }), "'gpu.memoryMb'"],
      [JSON.stringify({ gpu: { memoryMb: 12 } }), "'gpu.memoryMb'"],
      [JSON.stringify({ gpu: { cpu: 0 } }), "'gpu.cpu'"],
      [JSON.stringify({ gpu: { gpu: 1.5 } }), "'gpu.gpu'"],
      [JSON.stringify({ gpu: { memory: "16Gi" } }), "'gpu.memory'"],
      [JSON.stringify({ gpu: { image: "has space" } }), "'gpu.image'"],
      [JSON.stringify({ gpu: { env: { "1BAD": "x" } } }), "'gpu.env"],
      [JSON.stringify({ "GPU!": {} }), "profile name 'GPU!'"],
      [JSON.stringify({ "gpu-": {} }), "profile name 'gpu-'"],
      [JSON.stringify(["gpu"]), "TETHER_PROFILES"],
    ];
    for (const [raw, expected] of cases) {
      const error = configError({ ...K8S, TETHER_PROFILES: raw });
      expect(error.code, raw).toBe(ErrorCodes.CONFIG_INVALID);
      expect(error.message, raw).toContain("TETHER_PROFILES");
      expect(error.message, raw).toContain(expected);
    }
  });

  it("refuses a field the configured launcher cannot apply, saying which ones it can", () => {
    const local = configError({ TETHER_PROFILES: JSON.stringify({ gpu: { image: "x:1" } }) });
    expect(local.message).toContain("'gpu.image' cannot be applied by the local launcher, which applies only env");
    expect(local.hint).toContain("TETHER_LAUNCHER=docker");
    expect(loadConfig({ TETHER_PROFILES: JSON.stringify({ marked: { env: { MARK: "1" } } }) }).profiles.get("marked")?.env).toEqual({ MARK: "1" });
    expect(configError({ TETHER_LAUNCHER: "docker", TETHER_PROFILES: JSON.stringify({ gpu: { nodeSelector: { a: "b" } } }) }).message).toContain("'gpu.nodeSelector' cannot be applied by the docker launcher");
    const azure = {
      TETHER_LAUNCHER: "azure",
      TETHER_PUBLIC_URL: "wss://tether.example.com",
      TETHER_AZURE_SUBSCRIPTION_ID: "00000000-0000-0000-0000-000000000000",
      TETHER_AZURE_RESOURCE_GROUP: "rg",
      TETHER_AZURE_JOB_NAME: "job",
      TETHER_AZURE_WORKER_IMAGE: "img:1",
    };
    expect(configError({ ...azure, TETHER_PROFILES: JSON.stringify({ gpu: { gpu: 1 } }) }).message).toContain("'gpu.gpu' cannot be applied by the azure launcher");
    expect(loadConfig({ ...azure, TETHER_PROFILES: JSON.stringify({ big: { image: "img:2", cpu: 2, memoryMb: 4096 } }) }).profiles.get("big")).toMatchObject({ cpu: 2, memoryMb: 4096 });
  });

  it("refuses worker variables the launcher sets itself, and node selectors that are not labels", () => {
    expect(configError({ TETHER_PROFILES: JSON.stringify({ p: { env: { TETHER_JOIN_TOKEN: "x" } } }) }).message).toContain("'p.env.TETHER_JOIN_TOKEN' is set by the launcher");
    expect(configError({ ...K8S, TETHER_PROFILES: JSON.stringify({ gpu: { nodeSelector: { "bad key!": "gpu" } } }) }).message).toContain("'gpu.nodeSelector'");
  });

  it("finds a profile by name, default when none is named, and refuses an unknown one with 400 PROFILE_UNKNOWN listing the configured ones", () => {
    const profiles = loadConfig({ ...K8S, TETHER_PROFILES: JSON.stringify({ gpu: { gpu: 1 }, small: { cpu: 0.5 } }) }).profiles;
    expect(profileNamed(profiles, undefined)).toEqual({ name: "default" });
    expect(profileNamed(profiles, "gpu")).toEqual({ name: "gpu", gpu: 1 });
    try {
      profileNamed(profiles, "huge");
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: ErrorCodes.PROFILE_UNKNOWN, statusCode: 400 });
      const { message, hint } = error as { message: string; hint: string };
      expect(message).toBe("Worker profile 'huge' is not configured; available: default, gpu, small.");
      expect(hint).toContain("default, gpu, small");
    }
  });
});
