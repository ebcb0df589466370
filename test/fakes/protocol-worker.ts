import WebSocket from "ws";
import {
  MessageCodec,
  OrchestratorMessage,
  PROTOCOL_VERSION,
  ResumableLink,
  WorkerCapabilities,
  type WorkerMessage,
} from "@tether/shared";
import type { LaunchExit, LaunchHandle, Launcher, LaunchRequest } from "../../orchestrator/src/launchers/launcher.js";

const codec = new MessageCodec(OrchestratorMessage);

/**
 * An in-process worker that speaks the real worker protocol (hello, the
 * resumable link when asked, worker_ready, execution events) without a
 * kernel: `print(x)`-like executions echo their code. Tests can also push
 * raw frames at the orchestrator, as a broken or hostile worker would.
 */
export class ProtocolWorker {
  readonly socket: WebSocket;
  readonly received: OrchestratorMessage[] = [];
  private link: ResumableLink<OrchestratorMessage> | undefined;
  /** Uploads in progress: stream id -> call id and bytes received. */
  private readonly uploads = new Map<number, { callId: string; bytes: number }>();
  private closedResolve!: () => void;
  readonly closed = new Promise<void>((resolve) => (this.closedResolve = resolve));

  constructor(
    readonly request: LaunchRequest,
    private readonly options: { resumable?: boolean } = {},
  ) {
    this.socket = new WebSocket(request.orchestratorUrl);
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => this.closedResolve());
    this.socket.on("open", () => {
      const capabilities = [WorkerCapabilities.jupyterKernel, WorkerCapabilities.fileStreams, ...(options.resumable ? [WorkerCapabilities.resume] : [])];
      this.socket.send(JSON.stringify({ type: "hello", protocolVersion: PROTOCOL_VERSION, agentVersion: "fake", token: request.joinToken, capabilities } satisfies WorkerMessage));
    });
    this.socket.on("message", (data: Buffer, isBinary) => {
      if (isBinary) {
        const streamId = data.readUInt32BE(0);
        const upload = this.uploads.get(streamId);
        if (upload) {
          upload.bytes += data.byteLength - 4;
          this.send({ type: "stream_ack", streamId, bytes: data.byteLength - 4 });
        }
        return;
      }
      const received = this.link ? this.link.receive(data) : undefined;
      let message: OrchestratorMessage | undefined;
      if (received) message = received.kind === "message" ? received.message : undefined;
      else {
        const decoded = codec.decode(data.toString("utf8"));
        message = decoded.ok ? decoded.value : undefined;
      }
      if (message) this.onMessage(message);
    });
  }

  /** Sends a message the way a real worker does (sequenced once the link is resumable). */
  send(message: WorkerMessage): void {
    const json = JSON.stringify(message);
    if (this.link) this.link.send(json);
    else if (this.socket.readyState === WebSocket.OPEN) this.socket.send(json);
  }

  /** Sends bytes as they are, bypassing the protocol: fuzzing. */
  sendRaw(frame: string | Buffer, binary = false): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame, { binary });
  }

  /** A message body with the next seq in front, as a resumable worker numbers its frames: fuzzing past the link. */
  sendSequencedRaw(json: string): void {
    if (this.link) this.link.send(json);
    else this.sendRaw(json);
  }

  private onMessage(message: OrchestratorMessage): void {
    this.received.push(message);
    switch (message.type) {
      case "welcome":
        if (this.options.resumable && message.resumeToken) {
          this.link = new ResumableLink(
            { sendText: (frame) => this.socket.readyState === WebSocket.OPEN && this.socket.send(frame, { binary: false }), terminate: () => this.socket.terminate() },
            { decode: (text) => codec.decode(text), unsequenced: new Set(["ack", "resumed", "welcome", "join_refused"]), sequenced: true },
          );
        }
        this.send({ type: "worker_ready", kernel: { name: "python3", language: "python", languageVersion: "3" }, timings: { processStartMs: 0, jupyterReadyMs: 0, kernelReadyMs: 0 } });
        return;
      case "execute": {
        const { requestId } = message;
        this.send({ type: "stream", requestId, name: "stdout", text: `ran ${message.code}\n` });
        this.send({ type: "done", requestId, status: "ok", executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false });
        return;
      }
      case "files_list":
        this.send({ type: "call_result", callId: message.callId, ok: true, value: { files: [], truncated: false } });
        return;
      case "interrupt":
      case "restart":
      case "file_delete":
        this.send({ type: "call_result", callId: message.callId, ok: true, value: {} });
        return;
      case "file_download":
        this.send({ type: "call_result", callId: message.callId, ok: false, error: { code: "TETHER_ERR_FILE_NOT_FOUND", message: `No file '${message.path}' in the session workspace.` } });
        return;
      case "file_upload":
        this.uploads.set(message.streamId, { callId: message.callId, bytes: 0 });
        return;
      case "stream_end": {
        const upload = this.uploads.get(message.streamId);
        if (!upload) return;
        this.uploads.delete(message.streamId);
        if (message.error) this.send({ type: "call_result", callId: upload.callId, ok: false, error: message.error });
        else this.send({ type: "call_result", callId: upload.callId, ok: true, value: { size: upload.bytes } });
        return;
      }
      case "shutdown":
        this.socket.close(4000, "shutdown");
        return;
      default:
        return;
    }
  }
}

/** Launches a ProtocolWorker per launch, in this process. */
export class ProtocolWorkerLauncher implements Launcher {
  readonly kind = "protocol-fake";
  readonly workers: ProtocolWorker[] = [];

  constructor(private readonly options: { resumable?: boolean } = {}) {}

  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    const worker = new ProtocolWorker(request, this.options);
    this.workers.push(worker);
    let exit!: (value: LaunchExit) => void;
    const exited = new Promise<LaunchExit>((resolve) => (exit = resolve));
    void worker.closed.then(() => exit({ code: 0, signal: null, reason: "the fake worker closed its socket", stderrTail: [] }));
    return {
      launchId: request.launchId,
      exited,
      stop: async () => {
        worker.socket.close(4000, "stopped");
        await worker.closed;
      },
    };
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.socket.close()));
  }
}
