import WebSocket from "ws";

/** Largest kernel message the worker reads (one Jupyter message; see output-limits.ts for what it sends on). */
const KERNEL_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024 * 1024 - 1;

/**
 * Holds one agent's kernel output back while its orchestrator link is
 * backed up: the kernel websockets stop being read, and the kernel's output
 * waits in TCP and ZMQ buffers instead of this process's memory. One gate per
 * agent: in a process hosting many agents (the benchmark fleet), one slow
 * link must not pause the others.
 */
export class OutputGate {
  private readonly live = new Set<WebSocket>();
  private paused = false;
  /** The WebSocket class to hand @jupyterlab/services (it calls `new WebSocket(url, protocols)`): every socket it opens obeys this gate. */
  readonly WebSocket: new (address: string | URL, protocols?: string | string[]) => WebSocket;

  constructor() {
    const track = (socket: WebSocket): void => this.track(socket);
    this.WebSocket = class GatedWebSocket extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        // ipykernel batches unflushed prints into one message: 100 x 1 MiB arrives as a 100 MiB frame,
        // over ws's default limit (100 MiB), which would drop the kernel socket. The worker splits it afterwards.
        super(address, protocols, { maxPayload: KERNEL_MAX_PAYLOAD_BYTES });
        track(this);
      }
    };
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stop reading every kernel socket of this agent. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    for (const socket of this.live) if (socket.readyState === WebSocket.OPEN) socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const socket of this.live) socket.resume();
  }

  private track(socket: WebSocket): void {
    this.live.add(socket);
    socket.once("close", () => this.live.delete(socket));
    if (this.paused) socket.once("open", () => this.paused && socket.pause());
  }
}
