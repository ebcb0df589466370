import type { LaunchRequest } from "../launcher.js";
import { SandboxPaths } from "./bwrap-args.js";

/** Host variables a sandbox keeps without being asked: locale and time zone, nothing that names a host path. */
const KEPT = /^(LANG|LANGUAGE|LC_[A-Z]+|TZ)$/;

export interface SandboxEnvironmentOptions {
  request: Pick<LaunchRequest, "launchId" | "env">;
  /** TETHER_SANDBOX_PASS_ENV. */
  passEnv: readonly string[];
  /** What the worker dials: the gateway socket inside. */
  orchestratorUrl: string;
  /** Passed to the worker as TETHER_SANDBOX_LIMITS, to explain a kernel a limit killed. */
  limits: { memoryMb: number; maxProcesses: number; cpuSeconds: number; killRecord: string };
  /** Defaults to process.env. */
  hostEnv?: NodeJS.ProcessEnv;
}

/**
 * The whole environment of a sandbox: bwrap itself gets it too, because its
 * first process inside (PID 1) keeps bwrap's environment, readable by kernel
 * code in /proc/1/environ. So an allowlist, not the host's environment: the
 * host's may name the data dir (TETHER_DATA_DIR, PWD, npm's INIT_CWD) or hold
 * credentials under innocent names. Never the join token.
 */
export function sandboxEnvironment(options: SandboxEnvironmentOptions): Record<string, string> {
  const host = options.hostEnv ?? process.env;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(host)) if (value !== undefined && KEPT.test(name)) env[name] = value;
  for (const name of options.passEnv) {
    const value = host[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    LANG: "C.UTF-8",
    ...env,
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: SandboxPaths.home,
    // getpass.getuser() (jupyter_client's session) reads these before the passwd file.
    USER: "tether",
    LOGNAME: "tether",
    ...options.request.env,
    TETHER_ORCHESTRATOR_URL: options.orchestratorUrl,
    TETHER_JOIN_TOKEN_FILE: SandboxPaths.joinTokenFile,
    TETHER_LAUNCH_ID: options.request.launchId,
    TETHER_WORKSPACE: SandboxPaths.workspace,
    TETHER_SANDBOX_LIMITS: JSON.stringify(options.limits),
  };
}
