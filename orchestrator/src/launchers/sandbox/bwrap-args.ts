import type { SandboxLimits } from "../../config-sandbox.js";
import type { HostLayout } from "./host-layout.js";

/** Paths inside every sandbox (docs/internals.md, "Sandbox layout"). */
export const SandboxPaths = {
  /** The session's workspace, writable: Jupyter's root dir and the kernel's cwd. */
  workspace: "/mnt/data",
  /** The launch's run dir, read-only: the gateway socket and the limit-kill record. */
  runDir: "/run/tether",
  gatewaySocket: "/run/tether/gateway.sock",
  /** Written by the orchestrator's memory watch just before it kills a process (JSON, see memory-watch.ts). */
  limitKillRecord: "/run/tether/limit-kill.json",
  /** The join token, copied by bwrap into the sandbox's own /tmp (never on the host's disk); the worker unlinks it. */
  joinTokenFile: "/tmp/.tether-join-token",
  /** HOME: Jupyter's runtime files, IPython's history and matplotlib's cache go here, not into the workspace. */
  home: "/tmp",
} as const;

/** Size of the sandbox's /tmp (also HOME) and /dev/shm: tmpfs pages are memory the memory watch does not see. */
export const TMP_SIZE_MB = 512;
export const SHM_SIZE_MB = 64;
const MiB = 1024 * 1024;

export interface SandboxMounts {
  /** Host workspace bound writable at /mnt/data; undefined: an empty tmpfs there (the start-up probes). */
  workspace?: string;
  /** Host run dir bound read-only at /run/tether. */
  runDir?: string;
  /** fd bwrap reads the join token from (written to SandboxPaths.joinTokenFile, mode 0600). */
  joinTokenFd?: number;
  /** fd bwrap writes `{"child-pid": N}` to: the sandbox's first process, as the host sees it. */
  infoFd?: number;
}

export interface SandboxArgsOptions {
  layout: HostLayout;
  mounts: SandboxMounts;
  limits: SandboxLimits;
  /** Keep the host's network namespace (TETHER_SANDBOX_NETWORK=on). */
  network: boolean;
  /** The command run inside, e.g. [node, /repo/worker/dist/main.js]. */
  command: readonly string[];
}

/** bwrap's options (for `--args FD`) and the command line after them. */
export interface BwrapInvocation {
  /**
   * New user, mount, PID, IPC, UTS, cgroup and (by default) network
   * namespaces; the system read-only; only the workspace writable; no user
   * namespaces inside. Read from a pipe (`--args FD`), so that the host
   * paths they name (the workspace is in the data dir) do not show in the
   * sandbox's /proc/1/cmdline, which is bwrap's.
   */
  options: string[];
  /** `prlimit <limits> -- <command>`: bwrap takes the command only on its own command line. */
  command: string[];
}

export function bwrapInvocation(options: SandboxArgsOptions): BwrapInvocation {
  const args = bwrapArguments(options);
  const split = args.indexOf("--");
  return { options: args.slice(0, split), command: args.slice(split + 1) };
}

/** All of bwrap's arguments, options then `--` then the command (what bwrapInvocation splits). */
export function bwrapArguments(options: SandboxArgsOptions): string[] {
  const { layout, mounts, limits } = options;
  const args = ["--unshare-all", "--unshare-user", "--disable-userns", ...(options.network ? ["--share-net"] : [])];
  args.push("--die-with-parent", "--new-session", "--hostname", "tether");
  for (const entry of layout.system) {
    if ("symlink" in entry) args.push("--symlink", entry.symlink, entry.path);
    else args.push("--ro-bind", entry.path, entry.path);
  }
  for (const file of layout.etc) args.push("--ro-bind-try", file, file);
  args.push("--proc", "/proc", "--dev", "/dev");
  args.push("--size", String(SHM_SIZE_MB * MiB), "--tmpfs", "/dev/shm");
  args.push("--size", String(TMP_SIZE_MB * MiB), "--tmpfs", "/tmp");
  // After the private /tmp: a checkout under /tmp (a CI clone) stays visible over it.
  for (const file of layout.readOnly) args.push("--ro-bind", file, file);
  if (mounts.joinTokenFd !== undefined) args.push("--perms", "0600", "--file", String(mounts.joinTokenFd), SandboxPaths.joinTokenFile);
  if (mounts.runDir !== undefined) args.push("--ro-bind", mounts.runDir, SandboxPaths.runDir);
  if (mounts.workspace !== undefined) args.push("--bind", mounts.workspace, SandboxPaths.workspace);
  else args.push("--tmpfs", SandboxPaths.workspace);
  // bwrap's root is a tmpfs the sandbox user owns: read-only, or it is unbounded memory.
  args.push("--remount-ro", "/dev", "--remount-ro", "/");
  args.push("--chdir", SandboxPaths.workspace);
  if (mounts.infoFd !== undefined) args.push("--info-fd", String(mounts.infoFd));
  args.push("--", ...prlimitPrefix(limits, layout.nprocPerNamespace), ...options.command);
  return args;
}

/**
 * Per-process limits, set inside the new user namespace so that RLIMIT_NPROC
 * counts this sandbox's processes only (Linux 5.14+). RLIMIT_DATA is a
 * backstop at twice the session's memory limit (the memory watch enforces
 * the session total); RLIMIT_CPU's soft limit sends SIGXCPU, the hard one 10 s
 * later SIGKILL; no core files (they would land in the workspace).
 */
export function prlimitPrefix(limits: SandboxLimits, nprocPerNamespace: boolean): string[] {
  const prefix = ["prlimit", "--core=0", `--data=${2 * limits.memoryMb * MiB}`];
  if (nprocPerNamespace) prefix.push(`--nproc=${limits.maxProcesses}`);
  if (limits.cpuSeconds > 0) prefix.push(`--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 10}`);
  return [...prefix, "--"];
}

/** NUL-separated, as `bwrap --args FD` reads them. */
export function encodeArgs(args: readonly string[]): Buffer {
  return Buffer.from(args.map((arg) => `${arg}\0`).join(""));
}
