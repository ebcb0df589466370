import { chmod, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { ErrorCodes, tetherError, type TetherError } from "../../errors.js";
import { runRootOf } from "../worker-spawn.js";
import { isUnder } from "./host-layout.js";
import { runCommand } from "./run-command.js";
import { sandboxedCommand, type SandboxContext } from "./sandbox-setup.js";

const PROBE_TIMEOUT_MS = 30_000;
/** sun_path holds 108 bytes with its NUL; `<dataDir>/run/lch_<32 hex>/gateway.sock` must fit. */
const MAX_SOCKET_PATH_BYTES = 107;
const SOCKET_SUFFIX = "/lch_00000000000000000000000000000000/gateway.sock";

const OFF_HINT = "or set TETHER_SANDBOX=off to run workers unsandboxed (code then runs as this user, with this user's files, processes and network)";

/**
 * Checks at start that sandboxed workers can run, so that `npm start` fails
 * once with the fix instead of every session failing: bwrap is installed and
 * can create its namespaces here (a trivial `bwrap ... true` with the
 * workers' own layout), and the data dir is where a sandbox may bind it.
 * Throws TETHER_ERR_RUNTIME_SANDBOX_UNAVAILABLE with a one-line message and a hint.
 */
export async function preflightSandbox(context: SandboxContext, dataDir: string): Promise<void> {
  if (!context.bwrap) {
    throw unavailable(
      "bubblewrap (bwrap) is not installed, and workers run in a bubblewrap sandbox (TETHER_SANDBOX=on, the default).",
      `install it (sudo apt-get install bubblewrap, or sudo bash infra/install-worker-runtime.sh), ${OFF_HINT}.`,
    );
  }
  checkDataDirOutsideBinds(context, dataDir);
  const socketPath = `${runRootOf(dataDir)}${SOCKET_SUFFIX}`;
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw unavailable(
      `TETHER_DATA_DIR is too long for the sandbox's gateway socket (${socketPath} is over ${MAX_SOCKET_PATH_BYTES} bytes).`,
      `choose a shorter TETHER_DATA_DIR, ${OFF_HINT}.`,
    );
  }
  if (context.identity) await makeReachable(dataDir, context.identity.uid);

  const result = await runCommand(sandboxedCommand(context, ["true"]), PROBE_TIMEOUT_MS);
  if (result.code === 0) return;
  const why = result.stderr.trim().split("\n").filter(Boolean).pop() ?? `exit code ${String(result.code ?? result.signal)}`;
  throw unavailable(`bubblewrap cannot create a sandbox on this machine: ${why}.`, namespaceHint(why));
}

function namespaceHint(why: string): string {
  if (/could not run .* as uid/.test(why)) {
    return `the orchestrator runs as root, so sandboxes run as uid 65534 (nobody), which this machine (a user namespace?) does not map: run the orchestrator as an ordinary user, ${OFF_HINT}.`;
  }
  if (/namespace|uid map|No permissions|Operation not permitted|Permission denied/i.test(why)) {
    return (
      "enable unprivileged user namespaces (sudo sysctl -w kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0; " +
      `on Ubuntu 23.10+ also kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap; in a container: allow unshare in its seccomp profile), ${OFF_HINT}.`
    );
  }
  return `run \`bwrap --unshare-all --ro-bind / / true\` to see the problem, ${OFF_HINT}.`;
}

/** A data dir inside something bound read-only (the checkout's node_modules, /usr, a TETHER_SANDBOX_RO_BINDS path) would be visible in every sandbox. */
function checkDataDirOutsideBinds(context: SandboxContext, dataDir: string): void {
  const bound = [...context.layout.system.filter((entry) => "dir" in entry).map((entry) => entry.path), ...context.layout.readOnly, ...context.layout.etc];
  const inside = bound.find((dir) => isUnder(dataDir, [dir]));
  if (inside) {
    throw unavailable(`TETHER_DATA_DIR (${dataDir}) is inside ${inside}, which every sandbox sees read-only.`, `move the data dir elsewhere, ${OFF_HINT}.`);
  }
}

/**
 * bwrap runs as `uid` (nobody) and must reach `<dataDir>/workspaces/<id>` and
 * `<dataDir>/run/<id>` to bind them: every directory on the way needs the
 * search bit for others. The data dir and its two subdirs are ours to fix
 * (o+x lets one enter, not list: the key file stays 0600); an ancestor is not.
 */
async function makeReachable(dataDir: string, uid: number): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    const info = await stat(dir);
    if ((info.mode & 0o001) === 0 && info.uid !== uid) {
      throw unavailable(
        `the sandbox user (uid ${uid}) cannot reach TETHER_DATA_DIR (${dataDir}): ${dir} is mode ${(info.mode & 0o777).toString(8)}.`,
        `choose a data dir outside ${dir} or allow others to enter it (chmod o+x ${dir}), ${OFF_HINT}.`,
      );
    }
    if (dir === path.dirname(dir)) break;
  }
  // Created private (others may enter, never list: workspace names are launch ids).
  for (const dir of [dataDir, path.join(dataDir, "workspaces"), runRootOf(dataDir)]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await stat(dir);
    if ((info.mode & 0o001) === 0) await chmod(dir, (info.mode & 0o777) | 0o001);
  }
}

function unavailable(message: string, hint: string): TetherError {
  return tetherError(ErrorCodes.RUNTIME_SANDBOX_UNAVAILABLE, message, { hint: hint.charAt(0).toUpperCase() + hint.slice(1) });
}
