import { DefaultAzureCredential } from "@azure/identity";
import { BlobServiceClient, ContainerClient, type StoragePipelineOptions } from "@azure/storage-blob";
import type { Logger } from "pino";
import type { SnapshotConfig } from "../config-snapshots.js";
import { AzureBlobSnapshotStore } from "./azure-blob-snapshot-store.js";
import { LocalDirectorySnapshotStore } from "./local-snapshot-store.js";
import { SnapshotExpiry } from "./snapshot-manifest.js";
import type { SnapshotStore } from "./snapshot-store.js";

/** Retries of one storage call (the SDK's exponential backoff); a save or restore that still fails keeps the previous snapshot. */
const BLOB_PIPELINE: StoragePipelineOptions = { retryOptions: { maxTries: 4 } };

/** The store TETHER_SNAPSHOT_STORE names. */
export function createSnapshotStore(config: SnapshotConfig, logger: Logger): SnapshotStore {
  const expiry = new SnapshotExpiry(config.ttlS * 1000);
  const storeLogger = logger.child({ component: "snapshots" });
  if (config.store === "local" || !config.blob) return new LocalDirectorySnapshotStore({ root: config.dir, expiry, logger: storeLogger });
  const blob = config.blob;
  const container =
    blob.auth === "credential"
      ? new ContainerClient(blob.containerUrl, new DefaultAzureCredential(), BLOB_PIPELINE)
      : BlobServiceClient.fromConnectionString(blob.connectionString, BLOB_PIPELINE).getContainerClient(blob.container);
  return new AzureBlobSnapshotStore({ container, expiry, logger: storeLogger });
}
