import { performance } from "node:perf_hooks";
import type { KernelMessage } from "@jupyterlab/services";
import type { Logger } from "pino";
import { PROTOCOL_VERSION, WorkerCapabilities, WorkerCloseCodes, type Welcome, type WorkerCallResult, type WorkerCallType, type WorkerMessage } from "@tether/shared";
import { StreamRegistry } from "./byte-streams.js";
import { OrchestratorChannel, type AgentMessage } from "./channel.js";
import type { WorkerConfig } from "./config.js";
import { ExitCodes, toErrorDetail, type ExitCode } from "./errors.js";
import { ExecutionRunner } from "./execution-runner.js";
import { startDownload, startUpload, type TransferContext } from "./file-transfers.js";
import { JUPYTER_INSTANCE_VARIABLE, kernelEnvironment, startJupyterServer, type JupyterServer } from "./jupyter-server.js";
import { explainKernelDeath, type KernelExit } from "./kernel-death.js";
import { KernelSession, type KernelInfo } from "./kernel-session.js";
import { OutputGate } from "./output-gate.js";
import { killProcessesMarked } from "./process-sweep.js";
import { SyntheticKernel, syntheticJupyterServer, type SyntheticKernelOptions } from "./synthetic-kernel.js";
import { Workspace } from "./workspace-files.js";

export const AGENT_VERSION = "0.1.0";

/**
 * `connecting` (dialing, before welcome) → `starting` (welcomed, kernel not
 * ready yet) → `ready` (worker_ready sent) → `stopping` → `stopped`; any
 * state but stopped may go to stopping.
 */
export type AgentState = "connecting" | "starting" | "ready" | "stopping" | "stopped";

const NEXT_STATES: Readonly<Record<AgentState, readonly AgentState[]>> = {
  connecting: ["starting", "stopping"],
  starting: ["ready", "stopping"],
  ready: ["stopping"],
  stopping: ["stopped"],
  stopped: [],
};

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

/** Messages by type, so one table can hold a handler per type with its own message type. */
type AgentMessageMap = { [M in AgentMessage as M["type"]]: M };
type HandlerTable = { [K in keyof AgentMessageMap]: (msg: AgentMessageMap[K]) => void };

function dispatch<K extends keyof AgentMessageMap>(table: HandlerTable, type: K, msg: AgentMessageMap[K]): void {
  table[type](msg);
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
  /** This agent's own kernel-output gate (never shared with another agent in the process). */
  private readonly gate = new OutputGate();
  private readonly welcomeWaiters: ((welcomed: boolean) => void)[] = [];
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
    const kernelEvents = {
      onMessage: (msg: KernelMessage.IMessage) => this.runner.onKernelMessage(msg),
      onDeath: (reason: string, failed: boolean, ended?: KernelExit) => this.runner.onKernelDeath(explainKernelDeath(reason, ended, config.sandboxLimits), failed),
    };
    this.kernel = synthetic ? new SyntheticKernel(kernelEvents, this.gate, synthetic) : new KernelSession(kernelEvents, this.log, this.gate, () => this.replaceServer());
    void this.server.then((server) => this.watchServer(server), () => undefined);
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
          if (paused) this.gate.pause();
          else this.gate.resume();
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

  /**
   * A Jupyter Server that dies under us (killed by user code, the OOM killer)
   * would leave the session answering KERNEL_UNAVAILABLE forever: report it
   * like a kernel death, and let the recovery start a new server.
   */
  private watchServer(server: JupyterServer): void {
    void server.exited.then((exit) => {
      if (!exit.unexpected || this.isStopping()) return;
      const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
      this.log.error({ code: exit.code, signal: exit.signal }, "Jupyter Server died; starting a new one");
      // Its kernels run in their own session and survive it: they hold memory and the old ports.
      void killProcessesMarked(JUPYTER_INSTANCE_VARIABLE, exit.instance).then((killed) => killed > 0 && this.log.info({ killed }, "killed the dead server's kernels"));
      if (this.kernel instanceof KernelSession) this.kernel.serverDied(`the Jupyter Server process died (${how}); a new one and a new kernel are starting, variables and imports are gone`);
    });
  }

  private async replaceServer(): Promise<JupyterServer> {
    const server = await startJupyterServer({ python: this.options.python, workspace: this.workspace.root, env: kernelEnvironment(process.env), logger: this.log });
    this.server = Promise.resolve(server);
    this.watchServer(server);
    return server;
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
      if (this.isStopping()) return;
      this.log.error({ err: error }, "kernel failed to start");
      await this.untilWelcomed();
      this.send({ type: "worker_failed", error: toErrorDetail(error) });
      await this.stop("the kernel failed to start", ExitCodes.failure);
      return;
    }
    if (!(await this.untilWelcomed()) || this.state !== "starting") return;
    this.transition("ready");
    this.log.info({ kernel, timings }, "worker ready");
    this.send({ type: "worker_ready", kernel, timings });
  }

  /** One handler per orchestrator message type; a handler that throws answers with protocol_error. */
  private readonly handlers: HandlerTable = {
    welcome: (msg) => this.onWelcome(msg),
    join_refused: (msg) => {
      this.log.error({ code: msg.code, reason: msg.message }, "the orchestrator refused the join");
      void this.stop(`join refused: ${msg.message}`, ExitCodes.joinRefused);
    },
    execute: (msg) => this.runner.enqueue(msg),
    input_reply: (msg) => this.runner.inputReply(msg.requestId, msg.value),
    interrupt: (msg) => this.answer(msg.callId, "interrupt", this.runner.interrupt().then(() => ({}))),
    restart: (msg) => this.answer(msg.callId, "restart", this.runner.restart().then(() => ({}))),
    executions_status: (msg) => this.answer(msg.callId, "executions_status", Promise.resolve(this.runner.status())),
    files_list: (msg) => this.answer(msg.callId, "files_list", this.workspace.list()),
    file_delete: (msg) => this.answer(msg.callId, "file_delete", this.workspace.delete(msg.path).then(() => ({}))),
    file_download: (msg) => void startDownload(this.transfers(), msg.callId, msg.path, msg.streamId),
    file_upload: (msg) => startUpload(this.transfers(), msg.callId, msg.path, msg.streamId),
    stream_ack: (msg) => {
      this.streams.ack(msg.streamId, msg.bytes);
    },
    stream_end: (msg) => {
      if (!this.streams.end(msg.streamId, msg.error)) this.log.warn({ streamId: msg.streamId }, "stream_end for an unknown stream");
    },
    shutdown: (msg) => void this.stop(`shutdown: ${msg.reason}`, ExitCodes.ok),
    protocol_error: (msg) => this.log.warn({ code: msg.code, message: msg.message, requestId: msg.requestId }, "the orchestrator refused a frame of ours"),
  };

  private handle(msg: AgentMessage): void {
    try {
      dispatch(this.handlers, msg.type, msg);
    } catch (error) {
      const detail = toErrorDetail(error);
      this.send({ type: "protocol_error", requestId: "requestId" in msg ? msg.requestId : null, code: detail.code, message: detail.message });
    }
  }

  private onWelcome(msg: Welcome): void {
    if (this.state !== "connecting") return;
    this.log = this.log.child({ workerId: msg.workerId, sessionId: msg.sessionId });
    this.channel.startHeartbeat(msg.heartbeatIntervalMs);
    this.transition("starting");
    this.welcomeWaiters.splice(0).forEach((resolve) => resolve(true));
  }

  /** True once welcomed; false if the worker stops first. */
  private untilWelcomed(): Promise<boolean> {
    if (this.isStopping()) return Promise.resolve(false);
    if (this.state !== "connecting") return Promise.resolve(true);
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
    if (this.isStopping()) return;
    if (code === WorkerCloseCodes.joinRefused) {
      this.log.error({ code, reason }, "the orchestrator refused the join");
      void this.stop(`join refused: ${reason}`, ExitCodes.joinRefused);
    } else if (this.state === "connecting") {
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
    this.welcomeWaiters.splice(0).forEach((resolve) => resolve(false));
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

  /** Answers a call with its typed value, or its error. */
  private answer<T extends WorkerCallType>(callId: string, _type: T, work: Promise<WorkerCallResult<T>>): void {
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

  private isStopping(): boolean {
    return this.state === "stopping" || this.state === "stopped";
  }

  private transition(next: AgentState): void {
    if (this.state === next) return;
    if (!NEXT_STATES[this.state].includes(next)) {
      this.log.error({ from: this.state, to: next }, "illegal worker state transition; ignored");
      return;
    }
    this.log.debug({ from: this.state, to: next }, "worker state");
    this.state = next;
  }
}

function round(ms: number): number {
  return Math.round(ms);
}
