import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * What of the host a sandbox sees, found once per orchestrator. Only this is
 * bound in (read-only): never `/`, so the orchestrator's data dir, its key
 * file, other sessions' workspaces and the rest of the host do not exist
 * inside, rather than being hidden by overlays that a mistake could uncover.
 */
export interface HostLayout {
  /** Top-level system entries: merged-/usr symlinks (`/bin -> usr/bin`) are recreated, real directories bound. */
  system: readonly SystemEntry[];
  /** Files and directories under /etc that programs need (name service, TLS roots, Python's and Jupyter's config); missing ones are skipped. */
  etc: readonly string[];
  /** Other host paths bound read-only at the same place: Tether's worker code, the node binary when outside /usr, TETHER_SANDBOX_RO_BINDS. */
  readOnly: readonly string[];
  /** RLIMIT_NPROC is counted per user namespace (Linux 5.14+); before, it counts every process of the uid on the host. */
  nprocPerNamespace: boolean;
}

export type SystemEntry = { path: string; symlink: string } | { path: string; dir: true };

/** Top-level directories a dynamically linked program and Python need. */
const SYSTEM_ROOTS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * /etc, piece by piece: the whole of it can hold credentials (npmrc,
 * pip.conf, gitconfig with tokens), so only what the runtime reads.
 * /etc/shadow and /etc/ssl/private are never bound.
 */
const ETC_ENTRIES = [
  "passwd", "group", "nsswitch.conf", "host.conf", "hosts", "gai.conf", "resolv.conf", "services", "protocols",
  "localtime", "timezone", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "locale.alias", "os-release", "debian_version",
  "ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf", "alternatives", "mime.types",
  "fonts", "matplotlibrc", "jupyter", "ipython",
];

/** The Tether checkout this orchestrator runs from (orchestrator/dist/launchers/sandbox/ is four levels down). */
export function tetherRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
}

export interface HostLayoutOptions {
  /** The worker's argv: absolute paths outside the bound system dirs are bound too (the node binary, a custom worker). */
  workerCommand: readonly string[];
  /** TETHER_SANDBOX_RO_BINDS. */
  extraReadOnly: readonly string[];
  /** Defaults to the checkout this code runs from. */
  root?: string;
}

export function discoverHostLayout(options: HostLayoutOptions): HostLayout {
  const system: SystemEntry[] = [];
  for (const entry of SYSTEM_ROOTS) {
    const stat = lstatOrUndefined(entry);
    if (!stat) continue;
    if (stat.isSymbolicLink()) system.push({ path: entry, symlink: readlinkSync(entry) });
    else if (stat.isDirectory()) system.push({ path: entry, dir: true });
  }
  const etc = [...ETC_ENTRIES, ...pythonEtcDirs()].map((name) => `/etc/${name}`).filter((p) => existsSync(p));

  const root = options.root ?? tetherRoot();
  const readOnly = new Set<string>();
  // The worker package, the protocol package it imports, and the hoisted dependencies.
  for (const dir of ["worker", "shared", "node_modules"]) {
    const full = path.join(root, dir);
    if (existsSync(full)) readOnly.add(full);
  }
  for (const arg of [process.execPath, ...options.workerCommand]) {
    if (!path.isAbsolute(arg) || !existsSync(arg)) continue;
    for (const candidate of new Set([arg, realpathSync(arg)])) {
      if (!isUnder(candidate, [...system.map((s) => s.path), ...readOnly])) readOnly.add(candidate);
    }
  }
  for (const extra of options.extraReadOnly) readOnly.add(extra);
  return { system, etc, readOnly: [...readOnly], nprocPerNamespace: kernelAtLeast(os.release(), 5, 14) };
}

/** True when `candidate` is one of `dirs` or inside one. */
export function isUnder(candidate: string, dirs: readonly string[]): boolean {
  return dirs.some((dir) => candidate === dir || candidate.startsWith(dir.endsWith("/") ? dir : `${dir}/`));
}

/** `5.15.0-91-generic` → compares 5.15 with the wanted version. */
export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (!match) return false;
  const [have, haveMinor] = [Number(match[1]), Number(match[2])];
  return have > major || (have === major && haveMinor >= minor);
}

/** Debian keeps sitecustomize.py for /usr/bin/python3.X in /etc/python3.X. */
function pythonEtcDirs(): string[] {
  try {
    return readdirSync("/etc").filter((name) => /^python3(\.\d+)?$/.test(name));
  } catch {
    return [];
  }
}

function lstatOrUndefined(file: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}
