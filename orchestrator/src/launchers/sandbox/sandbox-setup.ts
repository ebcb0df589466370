import { existsSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { SandboxOn, SandboxSetting } from "../../config-sandbox.js";
import type { Identity } from "../launch-run-dir.js";
import { DirectSpawner, runRootOf, type WorkerSpawner } from "../worker-spawn.js";
import { bwrapInvocation, encodeArgs } from "./bwrap-args.js";
import { discoverHostLayout, type HostLayout } from "./host-layout.js";
import { SandboxSpawner } from "./sandbox-spawn.js";

/**
 * Root must not run user code as root: with the orchestrator as root, sandboxes
 * run as `nobody` (bwrap as an unprivileged user, in its own user namespace).
 * Root is also exempt from RLIMIT_NPROC, so the process limit needs another uid.
 */
export const SANDBOX_IDENTITY_WHEN_ROOT: Identity = { uid: 65534, gid: 65534 };

export function sandboxIdentity(): Identity | undefined {
  return process.getuid?.() === 0 ? SANDBOX_IDENTITY_WHEN_ROOT : undefined;
}

/** bwrap on PATH, else where Debian puts it; undefined when it is not installed. */
export function findBwrap(pathEnv: string | undefined = process.env.PATH): string | undefined {
  for (const dir of [...(pathEnv ?? "").split(path.delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin"]) {
    const candidate = path.join(dir, "bwrap");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Everything a sandboxed launch and the start-up probes share. */
export interface SandboxContext {
  config: SandboxOn;
  layout: HostLayout;
  identity: Identity | undefined;
  /** undefined: not installed (the preflight says so). */
  bwrap: string | undefined;
}

export function sandboxContext(config: SandboxOn, workerCommand: readonly string[]): SandboxContext {
  return {
    config,
    layout: discoverHostLayout({ workerCommand, extraReadOnly: config.readOnlyBinds }),
    identity: sandboxIdentity(),
    bwrap: findBwrap(),
  };
}

/** How the local launcher starts workers: in bubblewrap unless TETHER_SANDBOX=off. */
export function createWorkerSpawner(sandbox: SandboxSetting, workerCommand: readonly string[], dataDir: string, logger: Logger): WorkerSpawner {
  if (sandbox.mode === "off") return new DirectSpawner(workerCommand, runRootOf(dataDir));
  const context = sandboxContext(sandbox, workerCommand);
  return new SandboxSpawner({
    config: context.config,
    layout: context.layout,
    command: workerCommand,
    runRoot: runRootOf(dataDir),
    identity: context.identity,
    bwrap: context.bwrap ?? "bwrap",
    logger: logger.child({ component: "sandbox" }),
  });
}

/** A command to run once, with what to write to its fd 3 (bwrap's `--args`). */
export interface CommandSpec {
  command: string;
  args: string[];
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  fd3?: Buffer;
}

/**
 * `argv` run inside a throwaway sandbox with the launches' layout and limits
 * (an empty tmpfs as the workspace, no run dir): what the Python probe and the
 * preflight run, so that what they find works where workers run.
 */
export function sandboxedCommand(context: SandboxContext, argv: readonly string[], env: Record<string, string> = {}): CommandSpec {
  const invocation = bwrapInvocation({ layout: context.layout, limits: context.config, network: context.config.network, mounts: {}, command: argv });
  return {
    command: context.bwrap ?? "bwrap",
    args: ["--args", "3", "--", ...invocation.command],
    env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", LANG: "C.UTF-8", ...env },
    ...(context.identity ? { uid: context.identity.uid, gid: context.identity.gid } : {}),
    fd3: encodeArgs(invocation.options),
  };
}
