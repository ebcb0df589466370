import { KernelAPI, KernelConnection, ServerConnection, type KernelMessage } from "@jupyterlab/services";
import type { Logger } from "pino";
import { ErrorCodes, errorMessage, stringField } from "@tether/shared";
import { WorkerError } from "./errors.js";
import { kernelExitOf, type KernelExit } from "./kernel-death.js";
import type { OutputGate } from "./output-gate.js";

export interface KernelInfo {
  name: string;
  language: string;
  languageVersion: string;
}

export interface KernelSessionEvents {
  /** Every message received from the kernel, synchronously, before @jupyterlab/services routes it. */
  onMessage(msg: KernelMessage.IMessage): void;
  /** The kernel process died and Jupyter Server is replacing it (or gave up: `restartFailed`); `ended` says how, when the server told. */
  onDeath(reason: string, restartFailed: boolean, ended?: KernelExit): void;
}

/** Where a Jupyter Server answers, and its token. */
export interface ServerAddress {
  baseUrl: string;
  wsUrl: string;
  token: string;
}

export type KernelState = "starting" | "idle" | "busy" | "restarting" | "dead" | "stopped";

const KERNEL_NAME = "python3";
/** How long a replacement kernel may take to become idle after a death or restart. */
export const KERNEL_RECOVERY_TIMEOUT_MS = 30_000;
/** A first start gets this long for its kernel_info reply before another kernel is tried (a healthy one answers in 1-6 s here, under load). */
const KERNEL_START_ATTEMPT_MS = 20_000;
const KERNEL_START_ATTEMPTS = 3;
/** A restart that is not idle by then gets a brand-new kernel instead (the orchestrator's backstop allows for both). */
const RESTART_IDLE_TIMEOUT_MS = 10_000;
/** While recovering from a death: how often the websocket is checked, and how long each state may last before a reconnect. */
const RECONNECT_CHECK_MS = 250;
const CONNECTED_NOT_IDLE_MS = 2000;
const CONNECTING_MS = 10_000;

/**
 * One Python kernel behind Jupyter Server, reached over its kernel websocket.
 * Survives kernel deaths: Jupyter's restarter brings a new process up under
 * the same kernel id and the connection reconnects; if the restarter gives up,
 * this starts a new kernel.
 */
export class KernelSession {
  private connection: KernelConnection | undefined;
  private settings: ServerConnection.ISettings | undefined;
  private restartingByUs = false;
  /** The first start is under way: a death then is retried by start(), not reported. */
  private starting = false;
  private stopped = false;
  /** Jupyter Server itself died: the next recovery starts a new one before a new kernel. */
  private serverDead = false;

  constructor(
    private readonly events: KernelSessionEvents,
    private readonly logger: Logger,
    /** The agent's output gate: its WebSocket class is what reaches the kernel. */
    private readonly gate: OutputGate,
    /** Starts a new Jupyter Server (same workspace) when the current one died. */
    private readonly restartServer?: () => Promise<ServerAddress>,
  ) {}

  /** Starts the kernel on this server and resolves once it is idle, with what worker_ready reports. */
  async start(server: ServerAddress): Promise<KernelInfo> {
    this.useServer(server);
    this.starting = true;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.startOnce();
        } catch (error) {
          if (attempt >= KERNEL_START_ATTEMPTS || this.stopped) throw error;
          // Seen with several unsandboxed workers on one host: a kernel lost a ZMQ port to another kernel
          // starting at the same moment, the server's restarter replaced it, and the kernel_info promise of
          // the first process never settled. A new kernel gets new ports.
          this.logger.warn({ err: error, attempt }, "the kernel did not become ready; starting another");
          await this.discardConnection();
        }
      }
    } finally {
      this.starting = false;
    }
  }

  private async startOnce(): Promise<KernelInfo> {
    await this.connectNew();
    const connection = this.requireConnection();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, `The kernel did not answer kernel_info within ${KERNEL_START_ATTEMPT_MS} ms.`)), KERNEL_START_ATTEMPT_MS);
    });
    try {
      const reply = await Promise.race([connection.info, late]);
      await this.waitIdle(KERNEL_RECOVERY_TIMEOUT_MS);
      return { name: connection.name, language: reply.language_info.name, languageVersion: reply.language_info.version ?? "" };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the current kernel (its connection and, through the API, the kernel itself). */
  private async discardConnection(): Promise<void> {
    const old = this.connection;
    this.connection = undefined;
    if (!old) return;
    old.dispose();
    await KernelAPI.shutdownKernel(old.id, this.requireSettings()).catch(() => undefined);
  }

  /**
   * The Jupyter Server process died (killed, OOM): its kernel is gone with it.
   * Reported like a kernel death whose restart failed; the recovery starts a
   * new server and kernel in the same workspace (files stay, variables do not).
   */
  serverDied(reason: string): void {
    if (this.stopped || this.serverDead) return;
    this.serverDead = true;
    this.connection?.dispose();
    this.connection = undefined;
    this.events.onDeath(reason, true);
  }

  private useServer(server: ServerAddress): void {
    this.settings = ServerConnection.makeSettings({
      baseUrl: server.baseUrl,
      wsUrl: server.wsUrl,
      token: server.token,
      appendToken: true,
      // ws is API-compatible with the DOM WebSocket @jupyterlab/services expects.
      WebSocket: this.gate.WebSocket as unknown as typeof globalThis.WebSocket,
      fetch: globalThis.fetch,
      Request: globalThis.Request,
      Headers: globalThis.Headers,
    });
  }

  /** Sends execute_request; the caller follows it through onMessage by its msg_id. */
  execute(code: string, allowStdin: boolean): string {
    const future = this.requireConnection().requestExecute({ code, allow_stdin: allowStdin, stop_on_error: false, store_history: true, silent: false }, true);
    // Output is followed through onMessage; the future only exists to send. A restart or death cancels it: not an error here.
    future.done.catch(() => undefined);
    return future.msg.header.msg_id;
  }

  sendInputReply(value: string, parent: KernelMessage.IHeader<"input_request">): void {
    this.requireConnection().sendInputReply({ status: "ok", value }, parent);
  }

  /** POST /api/kernels/:id/interrupt. */
  async interrupt(): Promise<void> {
    await this.requireConnection().interrupt();
  }

  /** Restarts the kernel through the API (state is lost) and resolves once the new one is idle. */
  async restart(): Promise<void> {
    this.restartingByUs = true;
    try {
      const connection = this.connection;
      if (!connection || connection.isDisposed || connection.status === "dead") {
        await this.replaceKernel();
        return;
      }
      try {
        await connection.restart();
        // The reconnect inside restart() races Jupyter the same way as after a death (see watchReconnect).
        const watchdog = this.watchReconnect();
        try {
          await this.waitIdle(RESTART_IDLE_TIMEOUT_MS);
        } finally {
          watchdog.stop();
        }
        return;
      } catch (error) {
        this.logger.warn({ err: error }, "restarted kernel did not become idle; starting a new kernel");
      }
      await this.replaceKernel();
    } catch (error) {
      throw new WorkerError(ErrorCodes.KERNEL_RESTART_FAILED, `The kernel could not be restarted: ${errorMessage(error)}`, { cause: error });
    } finally {
      this.restartingByUs = false;
    }
  }

  /**
   * After a death: waits for Jupyter's replacement kernel to be idle, or starts
   * a new kernel if the restarter gave up or the replacement does not come up.
   */
  async recoverFromDeath(restartFailed: boolean): Promise<void> {
    if (!restartFailed) {
      const watchdog = this.watchReconnect();
      try {
        // The connection still reports the dead kernel's last status: wait for a fresh idle.
        await this.waitIdle(KERNEL_RECOVERY_TIMEOUT_MS, true);
        return;
      } catch (error) {
        this.logger.warn({ err: error }, "replacement kernel did not become idle; starting a new kernel");
      } finally {
        watchdog.stop();
      }
    }
    await this.replaceKernel();
  }

  /** Resolves when the kernel reports idle; rejects after timeoutMs or if the connection dies. */
  waitIdle(timeoutMs: number, fresh = false): Promise<void> {
    const connection = this.requireConnection();
    if (!fresh && connection.status === "idle" && connection.connectionStatus === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onStatus = (_: unknown, status: string): void => {
        if (status === "idle") finish();
        else if (status === "dead") finish(new Error("the kernel is dead"));
      };
      const timer = setTimeout(() => finish(new Error(`the kernel was not idle within ${timeoutMs} ms`)), timeoutMs);
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        connection.statusChanged.disconnect(onStatus);
        if (error) reject(error);
        else resolve();
      };
      connection.statusChanged.connect(onStatus);
    });
  }

  /** Shuts the kernel down through the API (it runs in its own session, out of reach of the server's group kill). Idempotent. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    const id = connection.id;
    connection.dispose();
    try {
      await KernelAPI.shutdownKernel(id, this.requireSettings());
    } catch (error) {
      this.logger.warn({ err: error }, "kernel shutdown through the API failed");
    }
  }

  /**
   * @jupyterlab/services reconnects at once when the kernel websocket drops on
   * a death, which can be before Jupyter's restarter has the new kernel up: the
   * server then wires that socket to the dead kernel's ports and the new kernel
   * never answers (seen under load). Its own retries back off to minutes and
   * stop on a clean close. So while the replacement is not idle, reconnect a
   * socket that is connected but silent for 2 s, or disconnected; a handshake
   * in progress is left alone (the server holds it until the kernel is up).
   */
  private watchReconnect(): { stop(): void } {
    let since = Date.now();
    let last = this.connection?.connectionStatus;
    const timer = setInterval(() => {
      const connection = this.connection;
      if (!connection || connection.isDisposed) return;
      const status = connection.connectionStatus;
      if (status !== last) {
        last = status;
        since = Date.now();
      }
      const stuckMs = Date.now() - since;
      const stale =
        status === "disconnected" ||
        (status === "connected" && stuckMs > CONNECTED_NOT_IDLE_MS) ||
        (status === "connecting" && stuckMs > CONNECTING_MS);
      if (!stale) return;
      this.logger.info({ connectionStatus: status, stuckMs }, "replacement kernel not answering, reconnecting its websocket");
      since = Date.now();
      connection.reconnect().catch(() => undefined);
    }, RECONNECT_CHECK_MS);
    return { stop: () => clearInterval(timer) };
  }

  private async replaceKernel(): Promise<void> {
    if (this.serverDead) {
      if (!this.restartServer) throw new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, "Jupyter Server died and cannot be restarted here.");
      this.useServer(await this.restartServer());
      this.serverDead = false;
    }
    const old = this.connection;
    this.connection = undefined;
    if (old) {
      old.dispose();
      await KernelAPI.shutdownKernel(old.id, this.requireSettings()).catch(() => undefined);
    }
    await this.connectNew();
    await this.requireConnection().info;
    await this.waitIdle(KERNEL_RECOVERY_TIMEOUT_MS);
  }

  private async connectNew(): Promise<void> {
    const settings = this.requireSettings();
    const model = await KernelAPI.startNew({ name: KERNEL_NAME }, settings);
    if (this.stopped) {
      await KernelAPI.shutdownKernel(model.id, settings).catch(() => undefined);
      throw new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, "The worker is shutting down.");
    }
    // handleComms off: nothing here answers comm messages, and ipywidgets must not think a frontend exists.
    const connection = new KernelConnection({ model, serverSettings: settings, handleComms: false });
    this.connection = connection;
    this.logger.info({ kernelId: model.id }, "kernel started");
    connection.anyMessage.connect((_, args) => {
      if (args.direction !== "recv") return;
      const msg = args.msg;
      if (msg.channel === "iopub" && msg.header.msg_type === "status" && !this.restartingByUs && !this.starting) {
        // The server announces a death with a parentless status: `restarting` when its restarter
        // replaces the kernel, `dead` when it gave up.
        const state = stringField(msg.content, "execution_state");
        if (state === "restarting" || state === "dead") {
          this.events.onDeath(state === "dead" ? "the kernel died and could not be restarted" : "the kernel process died", state === "dead", kernelExitOf(msg.content));
          return;
        }
      }
      this.events.onMessage(msg);
    });
  }

  private requireSettings(): ServerConnection.ISettings {
    if (!this.settings) throw new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, "Jupyter Server is not running yet.");
    return this.settings;
  }

  private requireConnection(): KernelConnection {
    const connection = this.connection;
    if (!connection || connection.isDisposed) throw new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, "No kernel is connected.");
    return connection;
  }
}
