import { SessionInfo, SessionList, schemaGuard } from "@tether/shared";
import { resolveConfig, type ResolvedConfig, type TetherOptions } from "./config.js";
import { HttpClient, type CallOptions } from "./http.js";
import { Session, type SessionHandleOptions, type SessionStatusUpdate } from "./session.js";

const isSessionInfo = schemaGuard(SessionInfo);
const isSessionList = schemaGuard(SessionList);

export interface CreateSessionOptions extends CallOptions {
  /** Free-form labels echoed back (e.g. a chat id). */
  metadata?: Record<string, string>;
  /** Seconds without activity before the session scales to zero; default the orchestrator's (600). */
  idleTimeoutS?: number;
  /**
   * true (default): resolve once the kernel is ready, reporting each phase to
   * `onProgress`; a failed start rejects (SessionStartError) and the session is
   * deleted. false: resolve at once with a session that is still starting.
   */
  wait?: boolean;
  /** Start progress: queued → launching → connected → ready (from the stream's session_status). */
  onProgress?: (update: SessionStatusUpdate) => void;
  /** How long a waiting create waits for the kernel; default 180000 ms. */
  startTimeoutMs?: number;
}

/**
 * The client: `new Tether({ baseUrl, apiKey })` on a backend, `new Tether({
 * baseUrl, token })` in a browser with a session token. Options given here win
 * over TETHER_BASE_URL / TETHER_API_KEY / TETHER_SESSION_TOKEN, which win over
 * the defaults; options given to a call win over both.
 */
export class Tether {
  private readonly config: ResolvedConfig;
  private readonly http: HttpClient;

  constructor(options: TetherOptions = {}) {
    this.config = resolveConfig(options);
    this.http = new HttpClient(this.config);
  }

  get baseUrl(): string {
    return this.config.baseUrl;
  }

  /** Starts a session (API key only). */
  async createSession(options: CreateSessionOptions = {}): Promise<Session> {
    const body = {
      wait: false,
      ...(options.metadata ? { metadata: options.metadata } : {}),
      ...(options.idleTimeoutS !== undefined ? { idleTimeoutS: options.idleTimeoutS } : {}),
    };
    const call = { ...(options.signal ? { signal: options.signal } : {}), ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) };
    // Always 202 at once: the progress of the start is followed on the stream.
    const info = await this.http.json({ method: "POST", path: "/v1/sessions", json: body, ...call }, isSessionInfo);
    const session = new Session(info.id, this.http, this.config);
    if (options.wait === false) return session;
    try {
      await session.waitUntilReady({
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.startTimeoutMs !== undefined ? { timeoutMs: options.startTimeoutMs } : {}),
      });
      return session;
    } catch (error) {
      session.close();
      // A start that failed (or that the caller gave up on) leaves nothing behind.
      await session.delete().catch(() => undefined);
      throw error;
    }
  }

  /** A handle on an existing session (no call is made until it is used). */
  session(id: string, options: SessionHandleOptions = {}): Session {
    return new Session(id, this.http, this.config, options);
  }

  /** The tenant's sessions (API key only). */
  async listSessions(options: CallOptions = {}): Promise<SessionInfo[]> {
    return (await this.http.json({ method: "GET", path: "/v1/sessions", ...options }, isSessionList)).sessions;
  }
}
