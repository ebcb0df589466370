import { describe, expect, it } from "vitest";
import { SandboxPaths, bwrapArguments, bwrapInvocation, encodeArgs, prlimitPrefix } from "./bwrap-args.js";
import type { HostLayout } from "./host-layout.js";

const layout: HostLayout = {
  system: [{ path: "/usr", dir: true }, { path: "/bin", symlink: "usr/bin" }],
  etc: ["/etc/passwd", "/etc/ssl/certs"],
  readOnly: ["/repo/worker", "/repo/shared", "/repo/node_modules"],
  nprocPerNamespace: true,
};
const limits = { memoryMb: 1024, maxProcesses: 128, cpuSeconds: 600 };
const mounts = { workspace: "/data/workspaces/lch_1", runDir: "/data/run/lch_1", joinTokenFd: 4, infoFd: 5 };

/** The value after each occurrence of `flag` (pairs: SRC DEST). */
function pairs(args: string[], flag: string): [string, string][] {
  return args.flatMap((arg, i) => (arg === flag ? [[args[i + 1]!, args[i + 2]!] as [string, string]] : []));
}

describe("bwrapArguments", () => {
  const args = bwrapArguments({ layout, limits, network: false, mounts, command: ["node", "/repo/worker/dist/main.js"] });

  it("unshares every namespace, network included, and forbids user namespaces inside", () => {
    expect(args.slice(0, 3)).toEqual(["--unshare-all", "--unshare-user", "--disable-userns"]);
    expect(args).not.toContain("--share-net");
    expect(args).toEqual(expect.arrayContaining(["--die-with-parent", "--new-session"]));
    expect(bwrapArguments({ layout, limits, network: true, mounts, command: ["x"] })).toContain("--share-net");
  });

  it("binds only the system, pieces of /etc and the worker's code read-only, never /", () => {
    expect(pairs(args, "--ro-bind")).toEqual([
      ["/usr", "/usr"],
      ["/repo/worker", "/repo/worker"],
      ["/repo/shared", "/repo/shared"],
      ["/repo/node_modules", "/repo/node_modules"],
      ["/data/run/lch_1", SandboxPaths.runDir],
    ]);
    expect(pairs(args, "--ro-bind-try")).toEqual([
      ["/etc/passwd", "/etc/passwd"],
      ["/etc/ssl/certs", "/etc/ssl/certs"],
    ]);
    expect(pairs(args, "--symlink")).toEqual([["usr/bin", "/bin"]]);
    // The only writable host path is the workspace, at /mnt/data, which is also the cwd.
    expect(pairs(args, "--bind")).toEqual([["/data/workspaces/lch_1", "/mnt/data"]]);
    expect(args.join(" ")).toContain("--chdir /mnt/data");
  });

  it("gives private, size-limited /tmp and /dev/shm, a new /proc, and a read-only root", () => {
    expect(args.join(" ")).toContain("--proc /proc --dev /dev --size 67108864 --tmpfs /dev/shm --size 536870912 --tmpfs /tmp");
    expect(args.join(" ")).toContain("--remount-ro /dev --remount-ro /");
    // The token file is copied from a pipe into the sandbox's own /tmp, after /tmp is mounted.
    expect(args.indexOf("--file")).toBeGreaterThan(args.lastIndexOf("/tmp"));
    expect(args.join(" ")).toContain(`--perms 0600 --file 4 ${SandboxPaths.joinTokenFile}`);
  });

  it("puts an empty tmpfs at /mnt/data when there is no workspace (the start-up probes)", () => {
    const probe = bwrapArguments({ layout, limits, network: false, mounts: {}, command: ["true"] });
    expect(probe.join(" ")).toContain("--tmpfs /mnt/data");
    expect(pairs(probe, "--bind")).toEqual([]);
    expect(probe).not.toContain("--file");
  });

  it("splits into options (read from a pipe) and the command line, which names no host path of the data dir", () => {
    const { options, command } = bwrapInvocation({ layout, limits, network: false, mounts, command: ["node", "/repo/worker/dist/main.js"] });
    expect(options).toContain("/data/workspaces/lch_1");
    expect(command.join(" ")).not.toContain("/data/");
    expect(command.slice(-2)).toEqual(["node", "/repo/worker/dist/main.js"]);
    expect(encodeArgs(["--a", "b c"]).toString()).toBe("--a\0b c\0");
  });
});

describe("prlimitPrefix", () => {
  it("sets no core files, a data backstop at twice the memory limit, the process limit and the CPU time limit", () => {
    expect(prlimitPrefix(limits, true)).toEqual(["prlimit", "--core=0", `--data=${2 * 1024 * 1024 * 1024}`, "--nproc=128", "--cpu=600:610", "--"]);
  });

  it("leaves RLIMIT_NPROC alone where it is counted per uid (Linux before 5.14), and the CPU limit when it is 0", () => {
    expect(prlimitPrefix({ ...limits, cpuSeconds: 0 }, false)).toEqual(["prlimit", "--core=0", `--data=${2 * 1024 * 1024 * 1024}`, "--"]);
  });
});
