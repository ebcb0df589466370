import type { WorkerConnection } from "./worker-connection.js";

/** What a launch uses of the connection its worker dialed back on. */
export type AttachedConnection = Pick<WorkerConnection, "workerId" | "state" | "setHandler" | "send" | "call" | "download" | "upload" | "pause" | "resume" | "close" | "shuttingDown" | "delivered" | "resumeDigest" | "deferAcks" | "confirm">;

/** What the gateway needs of a launch that waits for its worker to dial back. */
export interface AwaitedLaunch {
  readonly launchId: string;
  /** True while the gateway may bind a dialing worker to this launch. */
  readonly awaitingConnection: boolean;
  /** Binds the worker that joined with this launch's token. False when the launch no longer waits for one. */
  attachWorker(connection: AttachedConnection): boolean;
}

/** Launches by id, so the gateway can bind a dialing worker to its launch (session or pool alike). */
export class LaunchTable {
  private readonly byId = new Map<string, AwaitedLaunch>();

  add(launch: AwaitedLaunch): void {
    this.byId.set(launch.launchId, launch);
  }

  remove(launch: AwaitedLaunch): void {
    if (this.byId.get(launch.launchId) === launch) this.byId.delete(launch.launchId);
  }

  /** The launch a join token was minted for, while it exists. */
  forWorker(launchId: string): AwaitedLaunch | undefined {
    return this.byId.get(launchId);
  }
}
