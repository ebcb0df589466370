import { performance } from "node:perf_hooks";
import type { KernelMessage } from "@jupyterlab/services";
import type { Logger } from "pino";
import { PROTOCOL_VERSION, WorkerCapabilities, WorkerCloseCodes, type WorkerMessage } from "@tether/shared";
import { StreamRegistry } from "./byte-streams.js";
import { OrchestratorChannel, type AgentMessage } from "./channel.js";
import type { WorkerConfig } from "./config.js";
import { ExitCodes, toErrorDetail, type ExitCode } from "./errors.js";
import { ExecutionRunner } from "./execution-runner.js";
import { startDownload, startUpload, type TransferContext } from "./file-transfers.js";
import { kernelEnvironment, startJupyterServer, type JupyterServer } from "./jupyter-server.js";
import { KernelSession, type KernelInfo } from "./kernel-session.js";
import { KernelWebSocket } from "./kernel-websocket.js";
import { SyntheticKernel, syntheticJupyterServer, type SyntheticKernelOptions } from "./synthetic-kernel.js";
import { Workspace } from "./workspace-files.js";

export const AGENT_VERSION = "0.1.0";

export type AgentState = "connecting" | "starting" | "ready" | "stopping" | "stopped";

export interface AgentOptions {
  config: WorkerConfig;
  /** Interpreter with jupyter_server + ipykernel (already probed). */
  python: string;
  logger: Logger;
  /**
   * Jupyter Server already being started by main.ts, which spawns it before
   * loading this module and @jupyterlab/services so Python boots meanwhile.
   * Its root dir must be the workspace's realpath.
   */
  jupyterServer?: Promise<JupyterServer>;
  /** BENCHMARKS ONLY: an in-process echo kernel instead of Jupyter Server + ipykernel (see synthetic-kernel.ts). */
  syntheticKernelForBenchmarks?: SyntheticKernelOptions;
}

/**
 * The worker: dials the orchestrator while Jupyter Server and the kernel come
 * up, then bridges executions and file calls until told to stop.
 */
export class WorkerAgent {
  private state: AgentState = "connecting";
  private log: Logger;
  private channel!: OrchestratorChannel;
  private server: Promise<JupyterServer> | undefined;
  private kernel!: KernelSession | SyntheticKernel;
  private runner!: ExecutionRunner;
  private workspace!: Workspace;
  private readonly streams = new StreamRegistry();
  private welcomed = false;
  private exit!: (code: ExitCode) => void;
  private readonly exited = new Promise<ExitCode>((resolve) => (this.exit = resolve));
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: AgentOptions) {
    this.log = options.logger;
  }

  /** Runs until shutdown; resolves with the process exit code. */
  async run(): Promise<ExitCode> {
    const { config } = this.options;
    this.workspace = await Workspace.open(config.workspace);
    const synthetic = this.options.syntheticKernelForBenchmarks;
    this.server = synthetic
      ? Promise.resolve(syntheticJupyterServer())
      : (this.options.jupyterServer ?? startJupyterServer({ python: this.options.python, workspace: this.workspace.root, env: kernelEnvironment(process.env), logger: this.log }));
    this.server.catch(() => undefined); // handled through kernelReady below
    const kernelEvents = { onMessage: (msg: KernelMessage.IMessage) => this.runner.onKernelMessage(msg), onDeath: (reason: string, failed: boolean) => this.runner.onKernelDeath(reason, failed) };
    this.kernel = synthetic ? new SyntheticKernel(kernelEvents, synthetic) : new KernelSession(kernelEvents, this.log);
    this.runner = new ExecutionRunner(this.kernel, (msg) => this.send(msg), { interruptGraceMs: config.interruptGraceMs, logger: this.log });
    const timings = { processStartMs: round(performance.now()), jupyterReadyMs: 0, kernelReadyMs: 0 };
    const kernelReady = this.server.then(async (server) => {
      timings.jupyterReadyMs = round(performance.now());
      const info = await this.kernel.start(server);
      timings.kernelReadyMs = round(performance.now());
      return info;
    });
    kernelReady.catch(() => undefined);
    this.runner.holdUntil(kernelReady);

    this.channel = new OrchestratorChannel(
      config.orchestratorUrl,
      {
        onOpen: () => this.sendHello(),
        onMessage: (msg) => this.handle(msg),
        onBinary: (streamId, payload) => {
          if (!this.streams.chunk(streamId, payload)) this.log.warn({ streamId }, "binary frame for an unknown stream");
        },
        onClose: (code, reason) => this.onChannelClosed(code, reason),
        onHeartbeatLost: () => void this.stop("no heartbeat from the orchestrator for 3 intervals", ExitCodes.ok),
        onBackpressure: (paused) => {
          this.log.debug({ paused }, "orchestrator socket backpressure");
          if (paused) KernelWebSocket.pauseAll();
          else KernelWebSocket.resumeAll();
        },
        // The kernel keeps running through a drop; its output waits in the channel's replay buffer.
        onLinkDown: (reason) => {
          this.log.warn({ reason }, "orchestrator link down; file transfers in progress are cancelled");
          this.streams.closeAll();
        },
        onLinkUp: (gapMs) => this.log.info({ gapMs }, "orchestrator link resumed"),
        onResumeFailed: (reason) => void this.stop(`lost the orchestrator: ${reason}`, ExitCodes.ok),
      },
      this.log,
    );

    void this.reportReady(kernelReady, timings);
    return this.exited;
  }

  /** SIGTERM, SIGINT, shutdown, socket loss. Idempotent. */
  stop(reason: string, code: ExitCode): Promise<void> {
    this.stopping ??= this.doStop(reason, code);
    return this.stopping;
  }

  private async reportReady(kernelReady: Promise<KernelInfo>, timings: { processStartMs: number; jupyterReadyMs: number; kernelReadyMs: number }): Promise<void> {
    let kernel: KernelInfo;
    try {
      kernel = await kernelReady;
    } catch (error) {
      if (this.stopping) return;
      this.log.error({ err: error }, "kernel failed to start");
      await this.untilWelcomed();
      this.send({ type: "worker_failed", error: toErrorDetail(error) });
      await this.stop("the kernel failed to start", ExitCodes.failure);
      return;
    }
    if (!(await this.untilWelcomed())) return;
    this.transition("ready");
    this.log.info({ kernel, timings }, "worker ready");
    this.send({ type: "worker_ready", kernel, timings });
  }

  private handle(msg: AgentMessage): void {
    switch (msg.type) {
      case "welcome":
        this.welcomed = true;
        this.log = this.log.child({ workerId: msg.workerId, sessionId: msg.sessionId });
        this.channel.startHeartbeat(msg.heartbeatIntervalMs);
        this.transition("starting");
        this.welcomeWaiters.forEach((resolve) => resolve(true));
        return;
      case "join_refused":
        this.log.error({ code: msg.code, reason: msg.message }, "the orchestrator refused the join");
        void this.stop(`join refused: ${msg.message}`, ExitCodes.joinRefused);
        return;
      case "execute":
        try {
          this.runner.enqueue(msg);
        } catch (error) {
          const detail = toErrorDetail(error);
          this.send({ type: "protocol_error", requestId: msg.requestId, code: detail.code, message: detail.message });
        }
        return;
      case "input_reply":
        try {
          this.runner.inputReply(msg.requestId, msg.value);
        } catch (error) {
          const detail = toErrorDetail(error);
          this.send({ type: "protocol_error", requestId: msg.requestId, code: detail.code, message: detail.message });
        }
        return;
      case "interrupt":
        this.answer(msg.callId, this.runner.interrupt().then(() => ({})));
        return;
      case "restart":
        this.answer(msg.callId, this.runner.restart().then(() => ({})));
        return;
      case "files_list":
        this.answer(msg.callId, this.workspace.list());
        return;
      case "file_delete":
        this.answer(msg.callId, this.workspace.delete(msg.path).then(() => ({})));
        return;
      case "file_download":
        void startDownload(this.transfers(), msg.callId, msg.path, msg.streamId);
        return;
      case "file_upload":
        startUpload(this.transfers(), msg.callId, msg.path, msg.streamId);
        return;
      case "stream_ack":
        this.streams.ack(msg.streamId, msg.bytes);
        return;
      case "stream_end":
        if (!this.streams.end(msg.streamId, msg.error)) this.log.warn({ streamId: msg.streamId }, "stream_end for an unknown stream");
        return;
      case "shutdown":
        void this.stop(`shutdown: ${msg.reason}`, ExitCodes.ok);
        return;
      case "protocol_error":
        this.log.warn({ code: msg.code, message: msg.message, requestId: msg.requestId }, "the orchestrator refused a frame of ours");
        return;
      default: {
        const unknown: never = msg;
        this.log.error({ msg: unknown }, "unhandled message type");
      }
    }
  }

  private readonly welcomeWaiters: ((welcomed: boolean) => void)[] = [];

  /** True once welcomed; false if the worker stops first. */
  private untilWelcomed(): Promise<boolean> {
    if (this.welcomed) return Promise.resolve(true);
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => this.welcomeWaiters.push(resolve));
  }

  private sendHello(): void {
    this.log.info("connected to the orchestrator, sending hello");
    this.send({
      type: "hello",
      protocolVersion: PROTOCOL_VERSION,
      agentVersion: AGENT_VERSION,
      token: this.options.config.joinToken,
      capabilities: [WorkerCapabilities.jupyterKernel, WorkerCapabilities.fileStreams, WorkerCapabilities.stdinLines, WorkerCapabilities.resume],
    });
  }

  private onChannelClosed(code: number, reason: string): void {
    if (this.stopping) return;
    if (code === WorkerCloseCodes.joinRefused) {
      this.log.error({ code, reason }, "the orchestrator refused the join");
      void this.stop(`join refused: ${reason}`, ExitCodes.joinRefused);
    } else if (!this.welcomed) {
      this.log.error({ code, reason }, "the orchestrator connection closed before welcome");
      void this.stop("connection closed before welcome", ExitCodes.failure);
    } else {
      this.log.warn({ code, reason }, "the orchestrator connection closed");
      void this.stop(`connection closed (${code})`, ExitCodes.ok);
    }
  }

  private async doStop(reason: string, code: ExitCode): Promise<void> {
    this.transition("stopping");
    this.log.info({ reason, exitCode: code }, "worker stopping");
    this.welcomeWaiters.forEach((resolve) => resolve(false));
    this.runner?.dispose(reason);
    this.streams.closeAll();
    await this.kernel?.shutdown().catch((error: unknown) => this.log.warn({ err: error }, "kernel shutdown failed"));
    const server = await this.server?.catch(() => undefined);
    await server?.stop();
    if (this.channel) {
      await this.channel.flush();
      this.channel.close(WorkerCloseCodes.shutdown, reason.slice(0, 100));
    }
    this.transition("stopped");
    this.exit(code);
  }

  private answer(callId: string, work: Promise<unknown>): void {
    work.then(
      (value) => this.send({ type: "call_result", callId, ok: true, value }),
      (error: unknown) => this.send({ type: "call_result", callId, ok: false, error: toErrorDetail(error) }),
    );
  }

  private transfers(): TransferContext {
    return {
      workspace: this.workspace,
      streams: this.streams,
      send: (msg) => this.send(msg),
      sendBinary: (frame) => this.channel.sendBinary(frame),
      logger: this.log,
    };
  }

  private send(msg: WorkerMessage): void {
    this.channel.send(msg);
  }

  private transition(next: AgentState): void {
    if (this.state === next) return;
    this.log.debug({ from: this.state, to: next }, "worker state");
    this.state = next;
  }
}

function round(ms: number): number {
  return Math.round(ms);
}

