import type { Readable } from "node:stream";
import type { FileListResponse, WorkerCallResult } from "@tether/shared";
import type { WorkerHandle } from "../workers/worker-handle.js";

/** How long a file call may wait for the worker's answer. */
export const FILE_CALL_TIMEOUT_MS = 30_000;

export interface SessionFilesDeps {
  /** A worker serving the session now, resuming a stopped session first. */
  serving(): Promise<WorkerHandle>;
  /** Activity: pushes the idle clock back. */
  touch(): void;
}

/**
 * The session's workspace files, through whichever worker serves it. A
 * transfer in progress counts as activity: the session does not scale to
 * zero under it.
 */
export class SessionFiles {
  private active = 0;

  constructor(private readonly deps: SessionFilesDeps) {}

  /** File calls or transfers in progress. */
  get activeTransfers(): number {
    return this.active;
  }

  async list(): Promise<FileListResponse> {
    const worker = await this.deps.serving();
    return this.track(worker.call("files_list", {}, FILE_CALL_TIMEOUT_MS));
  }

  async delete(path: string): Promise<void> {
    const worker = await this.deps.serving();
    await this.track(worker.call("file_delete", { path }, FILE_CALL_TIMEOUT_MS));
  }

  /** Opens a download; the transfer counts as activity until its stream closes. */
  async download(path: string): Promise<{ size: number; stream: Readable }> {
    const worker = await this.deps.serving();
    this.active += 1;
    let opened: { size: number; stream: Readable };
    try {
      opened = await worker.download(path, FILE_CALL_TIMEOUT_MS);
    } catch (error) {
      this.ended();
      throw error;
    }
    opened.stream.once("close", () => this.ended());
    return opened;
  }

  async upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<WorkerCallResult<"file_upload">> {
    const worker = await this.deps.serving();
    return this.track(worker.upload(path, source, maxBytes));
  }

  private async track<T>(work: Promise<T>): Promise<T> {
    this.active += 1;
    try {
      return await work;
    } finally {
      this.ended();
    }
  }

  private ended(): void {
    this.active -= 1;
    this.deps.touch();
  }
}
