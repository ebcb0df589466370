import WebSocket from "ws";

/**
 * The WebSocket class handed to @jupyterlab/services. It remembers its live
 * instances so the worker can stop reading kernel output (pause) while the
 * orchestrator socket is backed up, instead of buffering without bound.
 */
export class KernelWebSocket extends WebSocket {
  private static readonly live = new Set<KernelWebSocket>();
  private static paused = false;

  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols);
    KernelWebSocket.live.add(this);
    this.once("close", () => KernelWebSocket.live.delete(this));
    if (KernelWebSocket.paused) this.once("open", () => KernelWebSocket.paused && this.pause());
  }

  /** Stop reading from every kernel socket; the kernel's output waits in TCP and ZMQ buffers. */
  static pauseAll(): void {
    if (KernelWebSocket.paused) return;
    KernelWebSocket.paused = true;
    for (const socket of KernelWebSocket.live) if (socket.readyState === WebSocket.OPEN) socket.pause();
  }

  static resumeAll(): void {
    if (!KernelWebSocket.paused) return;
    KernelWebSocket.paused = false;
    for (const socket of KernelWebSocket.live) socket.resume();
  }

  static get isPaused(): boolean {
    return KernelWebSocket.paused;
  }
}
