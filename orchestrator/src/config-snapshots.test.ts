import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { readSnapshotConfig } from "./config-snapshots.js";
import { ErrorCodes, TetherError } from "./errors.js";

const CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net";

function configError(env: Record<string, string>, readFile?: (file: string) => string): TetherError {
  try {
    readSnapshotConfig(env, "/data", readFile);
  } catch (error) {
    if (error instanceof TetherError) return error;
    throw error;
  }
  throw new Error("readSnapshotConfig accepted the environment");
}

describe("the snapshot configuration", () => {
  it("defaults to a local directory under the data dir, a 7-day TTL and an hourly sweep", () => {
    const config = loadConfig({ TETHER_DATA_DIR: "/srv/tether" });
    expect(config.snapshots).toEqual({ store: "local", dir: "/srv/tether/snapshots", ttlS: 604_800, sweepIntervalS: 3600 });
  });

  it("takes a shared directory, a TTL of 0 (never) and a sweep interval", () => {
    expect(readSnapshotConfig({ TETHER_SNAPSHOT_DIR: "shared/snaps", TETHER_SNAPSHOT_TTL_S: "0", TETHER_SNAPSHOT_SWEEP_INTERVAL_S: "60" }, "/data")).toEqual({
      store: "local",
      dir: path.resolve("shared/snaps"),
      ttlS: 0,
      sweepIntervalS: 60,
    });
  });

  it("uses the container URL with the Azure identity", () => {
    const config = readSnapshotConfig({ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_URL: "https://acct.blob.core.windows.net/tether-snapshots/" }, "/data");
    expect(config.blob).toEqual({ auth: "credential", containerUrl: "https://acct.blob.core.windows.net/tether-snapshots" });
  });

  it("reads the connection string from a file, trimmed, with the default container", () => {
    const read: string[] = [];
    const config = readSnapshotConfig(
      { TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE: "/run/secrets/blob" },
      "/data",
      (file) => (read.push(file), `${CONNECTION_STRING}\n`),
    );
    expect(read).toEqual(["/run/secrets/blob"]);
    expect(config.blob).toEqual({ auth: "connection-string", connectionString: CONNECTION_STRING, container: "tether-snapshots" });
  });

  it("names the fix when azure-blob has no place to write", () => {
    const error = configError({ TETHER_SNAPSHOT_STORE: "azure-blob" });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toMatch(/TETHER_SNAPSHOT_BLOB_URL/);
    expect(error.hint).toMatch(/DefaultAzureCredential.*TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE/s);
  });

  it.each([
    [{ TETHER_SNAPSHOT_STORE: "s3" }, /not supported/],
    [{ TETHER_SNAPSHOT_TTL_S: "-1" }, /whole number/],
    [{ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_URL: "http://acct.blob.core.windows.net/c1c" }, /https/],
    [{ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_URL: "https://acct.blob.core.windows.net/snaps?sv=2024&sig=abc" }, /SAS token is a secret/],
    [{ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_URL: "https://acct.blob.core.windows.net/Bad_Name" }, /container name/],
    [{ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_URL: "https://acct.blob.core.windows.net/c1c", TETHER_SNAPSHOT_BLOB_CONNECTION_STRING: CONNECTION_STRING }, /not both/],
    [{ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_CONNECTION_STRING: "just-a-key" }, /does not look like one/],
    [{ TETHER_SNAPSHOT_BLOB_URL: "https://acct.blob.core.windows.net/snaps" }, /TETHER_SNAPSHOT_STORE is 'local'/],
  ])("refuses %j", (env, message) => {
    expect(configError(env).message).toMatch(message);
  });

  it("names an unreadable or empty connection string file, never its content", () => {
    const env = { TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_CONNECTION_STRING_FILE: "/run/secrets/blob" };
    const missing = configError(env, () => {
      throw Object.assign(new Error("nope"), { code: "ENOENT" });
    });
    expect(missing.message).toMatch(/cannot be read \(ENOENT\): '\/run\/secrets\/blob'/);
    expect(configError(env, () => "  \n").message).toMatch(/empty file/);
    const bad = configError(env, () => "AccountKey=c2VjcmV0LWtleQ==");
    expect(bad.message).not.toContain("c2VjcmV0LWtleQ");
  });

  it("accepts an http URL for a local emulator only", () => {
    expect(readSnapshotConfig({ TETHER_SNAPSHOT_STORE: "azure-blob", TETHER_SNAPSHOT_BLOB_URL: "http://127.0.0.1:10000/devstoreaccount1/snaps" }, "/data").blob).toEqual({
      auth: "credential",
      containerUrl: "http://127.0.0.1:10000/devstoreaccount1/snaps",
    });
  });
});
