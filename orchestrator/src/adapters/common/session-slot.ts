import { ErrorCodes, tetherError } from "../../errors.js";
import type { ExecutionRequest, ExecutionSink, Session } from "../../sessions/session.js";
import type { SessionRegistry } from "../../sessions/session-registry.js";

/** A session the slot hands out, and whether this call had to start it. */
export interface AcquiredSession {
  session: Session;
  /** This call started the session: nothing from before (variables, files) is in it. */
  started: boolean;
  /** A session this slot held before was gone (deleted, failed) and this one replaced it. */
  replaced: boolean;
}

/** How a slot makes sessions and runs code in them (adapter-sessions.ts: REST's way, cluster-aware). */
export interface SlotHooks {
  /** A new session in `starting`, owned by `tenant` (in a cluster: admitted and owned cluster-wide). */
  create(tenant: string, metadata: Record<string, string>): Promise<Session>;
  /** Queues an execution (in a cluster: once the store has it). */
  submit(session: Session, request: ExecutionRequest, sink: ExecutionSink): Promise<void>;
  /**
   * The slot now holds `session` in place of `previousId` (null: none): an
   * adapter that records the binding elsewhere does so here. Rejecting stops
   * the new session and fails the acquire.
   */
  bind?(previousId: string | null, session: Session): Promise<void>;
}

/**
 * One adapter-level handle on a Tether session that exists only once it is
 * needed: the first call creates and starts it (owned by the tenant), later
 * calls reuse it, and a session that was deleted meanwhile (REST DELETE, a
 * failed start) is replaced by a new one. Uses the session core's public API
 * only: SessionRegistry.get, Session.start/stop, and the hooks.
 */
export class SessionSlot {
  private sessionId: string | undefined;
  private starting: Promise<AcquiredSession> | undefined;
  private held = 0;
  private released = false;

  constructor(
    private readonly registry: SessionRegistry,
    readonly tenant: string,
    private readonly metadata: Record<string, string>,
    readonly hooks: SlotHooks,
  ) {}

  /** The session's id (it may be served by another replica), undefined before the first use. */
  get id(): string | undefined {
    return this.sessionId;
  }

  /**
   * Points the slot at a session recorded elsewhere (another replica bound
   * it, or it moved here): a slot whose session was replaced behind its back
   * follows. No-op while a start runs (that start binds its own).
   */
  follow(sessionId: string | null): void {
    if (this.starting || sessionId === null || sessionId === this.sessionId) return;
    this.sessionId = sessionId;
    this.held = Math.max(this.held, 1);
  }

  /** The session now, without starting one: undefined before the first use or once it is gone (or served elsewhere). */
  peek(): Session | undefined {
    if (this.sessionId === undefined) return undefined;
    try {
      return this.registry.get(this.tenant, this.sessionId);
    } catch {
      return undefined;
    }
  }

  /** A session ready for calls, started on first use (and again when the previous one is gone). */
  acquire(): Promise<AcquiredSession> {
    if (this.released) return Promise.reject(ended());
    // Callers that arrive while a start runs wait for it, in order: their executions queue in call order.
    if (this.starting) return this.starting;
    const current = this.peek();
    if (current && current.state !== "failed") return Promise.resolve({ session: current, started: false, replaced: false });
    this.starting = this.start(current).finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(previous: Session | undefined): Promise<AcquiredSession> {
    if (previous) await previous.stop("replaced after its start failed");
    const replaced = this.held > 0;
    const previousId = this.sessionId ?? null;
    const session = await this.hooks.create(this.tenant, this.metadata);
    if (this.hooks.bind) {
      await this.hooks.bind(previousId, session).catch(async (error: unknown) => {
        await session.stop("another session took its place");
        throw error;
      });
    }
    this.sessionId = session.id;
    this.held += 1;
    await session.start();
    if (this.released) {
      await session.stop("its owner ended while it started");
      throw ended();
    }
    return { session, started: true, replaced };
  }

  /** Deletes the session, if one was started; later acquires fail. Idempotent. */
  async release(reason: string): Promise<void> {
    this.released = true;
    await this.starting?.catch(() => undefined);
    await this.peek()?.stop(reason);
  }

  /** Deletes the session but keeps the slot usable: the next acquire starts a new one. */
  async reset(reason: string): Promise<void> {
    await this.starting?.catch(() => undefined);
    const session = this.peek();
    this.sessionId = undefined;
    this.held = 0;
    await session?.stop(reason);
  }
}

function ended(): Error {
  return tetherError(ErrorCodes.SESSION_STOPPED, "This session has ended.", { hint: "Open a new one (MCP: initialize again; dynamic sessions: use the identifier again)." });
}
