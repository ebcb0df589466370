import { readFileSync } from "node:fs";
import path from "node:path";
import { isLocalHost, readInteger, readString, type Env } from "./config-readers.js";
import { configInvalid, errnoCode, errorMessage } from "./errors.js";

export type SnapshotStoreKind = "local" | "azure-blob";

/** Where the Azure Blob snapshot store writes, and as whom. */
export type BlobSnapshotConfig =
  /** TETHER_SNAPSHOT_BLOB_URL: the container URL; the identity is DefaultAzureCredential's (managed identity, AZURE_CLIENT_ID, ...). */
  | { auth: "credential"; containerUrl: string }
  /** TETHER_SNAPSHOT_BLOB_CONNECTION_STRING(_FILE) and TETHER_SNAPSHOT_BLOB_CONTAINER. Never logged. */
  | { auth: "connection-string"; connectionString: string; container: string };

/** Scale-to-zero snapshots (docs/internals.md, "Snapshots"). */
export interface SnapshotConfig {
  /** TETHER_SNAPSHOT_STORE: `local` (default) or `azure-blob`. */
  store: SnapshotStoreKind;
  /** TETHER_SNAPSHOT_DIR, absolute; default `<data dir>/snapshots`. Replicas may share it (a compose volume, a PVC). */
  dir: string;
  /** TETHER_SNAPSHOT_TTL_S, default 604800 (7 days): snapshots older than this are deleted by the sweep; 0 = never. */
  ttlS: number;
  /** TETHER_SNAPSHOT_SWEEP_INTERVAL_S, default 3600: how often the expiry sweep runs (also once at start). */
  sweepIntervalS: number;
  /** Set when `store` is `azure-blob`. */
  blob?: BlobSnapshotConfig;
}

const DEFAULT_CONTAINER = "tether-snapshots";
const BLOB_VARIABLES = ["TETHER_SNAPSHOT_BLOB_URL", "TETHER_SNAPSHOT_BLOB_CONNECTION_STRING", "TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE", "TETHER_SNAPSHOT_BLOB_CONTAINER"];

/** TETHER_SNAPSHOT_*; `readFile` reads TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE (tests pass their own). */
export function readSnapshotConfig(env: Env, dataDir: string, readFile: (file: string) => string = (file) => readFileSync(file, "utf8")): SnapshotConfig {
  const store = readStoreKind(env);
  const config: SnapshotConfig = {
    store,
    dir: path.resolve(readString(env, "TETHER_SNAPSHOT_DIR", path.join(dataDir, "snapshots"))),
    ttlS: readInteger(env, "TETHER_SNAPSHOT_TTL_S", 7 * 24 * 3600, 0),
    sweepIntervalS: readInteger(env, "TETHER_SNAPSHOT_SWEEP_INTERVAL_S", 3600, 1, 7 * 24 * 3600),
  };
  if (store === "azure-blob") {
    config.blob = readBlobConfig(env, readFile);
  } else {
    const stray = BLOB_VARIABLES.filter((name) => env[name]?.trim());
    if (stray.length > 0) {
      throw configInvalid(`${stray.join(", ")} ${stray.length === 1 ? "is" : "are"} set but TETHER_SNAPSHOT_STORE is 'local'.`, "Set TETHER_SNAPSHOT_STORE=azure-blob to keep snapshots in Azure Blob Storage, or unset them.");
    }
  }
  return config;
}

function readStoreKind(env: Env): SnapshotStoreKind {
  const value = readString(env, "TETHER_SNAPSHOT_STORE", "local");
  if (value !== "local" && value !== "azure-blob") throw configInvalid(`TETHER_SNAPSHOT_STORE '${value}' is not supported; use 'local' (a directory, TETHER_SNAPSHOT_DIR) or 'azure-blob'.`);
  return value;
}

function readBlobConfig(env: Env, readFile: (file: string) => string): BlobSnapshotConfig {
  const url = env.TETHER_SNAPSHOT_BLOB_URL?.trim();
  const connectionString = readConnectionString(env, readFile);
  if (url && connectionString) {
    throw configInvalid("Set either TETHER_SNAPSHOT_BLOB_URL (with an Azure identity) or a connection string (TETHER_SNAPSHOT_BLOB_CONNECTION_STRING[_FILE]), not both.");
  }
  if (connectionString) {
    const container = readString(env, "TETHER_SNAPSHOT_BLOB_CONTAINER", DEFAULT_CONTAINER);
    checkContainerName(container, "TETHER_SNAPSHOT_BLOB_CONTAINER");
    return { auth: "connection-string", connectionString, container };
  }
  if (!url) {
    throw configInvalid(
      "TETHER_SNAPSHOT_STORE=azure-blob needs TETHER_SNAPSHOT_BLOB_URL or a connection string.",
      "TETHER_SNAPSHOT_BLOB_URL=https://<account>.blob.core.windows.net/<container> uses the orchestrator's Azure identity (DefaultAzureCredential: " +
        "managed identity, AZURE_CLIENT_ID, az login); or put a connection string in a file and set TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE (plus TETHER_SNAPSHOT_BLOB_CONTAINER).",
    );
  }
  if (env.TETHER_SNAPSHOT_BLOB_CONTAINER?.trim()) throw configInvalid("TETHER_SNAPSHOT_BLOB_CONTAINER goes with a connection string; with TETHER_SNAPSHOT_BLOB_URL the container is the URL's path.");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw configInvalid(`TETHER_SNAPSHOT_BLOB_URL is not a URL.`, "Example: TETHER_SNAPSHOT_BLOB_URL=https://myaccount.blob.core.windows.net/tether-snapshots");
  }
  // Bearer tokens go over TLS only; http is for a local emulator.
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && isLocalHost(parsed.hostname))) {
    throw configInvalid(`TETHER_SNAPSHOT_BLOB_URL must be an https:// URL, got '${parsed.protocol}//${parsed.host}'.`);
  }
  if (parsed.search) throw configInvalid("TETHER_SNAPSHOT_BLOB_URL must not carry a query (a SAS token is a secret: use a connection string file instead).");
  const segments = parsed.pathname.split("/").filter(Boolean);
  const container = segments.at(-1) ?? "";
  checkContainerName(container, "the last path segment of TETHER_SNAPSHOT_BLOB_URL");
  return { auth: "credential", containerUrl: `${parsed.origin}/${segments.join("/")}` };
}

/** From the env or, better (nothing secret in the process environment), from the file TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE names. */
function readConnectionString(env: Env, readFile: (file: string) => string): string | undefined {
  const inline = env.TETHER_SNAPSHOT_BLOB_CONNECTION_STRING?.trim();
  const file = env.TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE?.trim();
  if (inline && file) throw configInvalid("Set TETHER_SNAPSHOT_BLOB_CONNECTION_STRING or TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE, not both.");
  let text = inline;
  if (file) {
    try {
      text = readFile(file).trim();
    } catch (error) {
      throw configInvalid(`TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE names a file that cannot be read (${errnoCode(error) ?? errorMessage(error)}): '${file}'.`);
    }
    if (!text) throw configInvalid(`TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE names an empty file: '${file}'.`);
  }
  // Checked for shape only: the value itself never goes into a message.
  if (text && !/(^|;)\s*(AccountName|BlobEndpoint)=/i.test(text)) {
    throw configInvalid(`The snapshot connection string (${file ? `in '${file}'` : "TETHER_SNAPSHOT_BLOB_CONNECTION_STRING"}) does not look like one: it names no AccountName or BlobEndpoint.`);
  }
  return text || undefined;
}

/** Azure's rule: 3-63 characters, lowercase letters, digits and single hyphens, starting and ending with a letter or digit. */
function checkContainerName(name: string, what: string): void {
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
    throw configInvalid(`${what} must be a container name (3-63 lowercase letters, digits and single hyphens), got '${name}'.`);
  }
}
