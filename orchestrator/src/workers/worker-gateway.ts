import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import { HELLO_MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, WORKER_MAX_PAYLOAD_BYTES, WorkerCapabilities, WorkerCloseCodes, isCompatibleProtocolVersion, type OrchestratorMessage, type WorkerResume } from "@tether/shared";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import { setMaxPayload } from "../ws-limits.js";
import type { JoinTokenBinding, JoinTokens } from "./join-tokens.js";
import type { LaunchTable } from "./launch-table.js";
import { WorkerConnection, toBuffer, workerCodec } from "./worker-connection.js";

/** A worker must say hello this soon after connecting. */
export const HELLO_TIMEOUT_MS = 5_000;
/**
 * Sockets that have not said a verified hello yet. An unauthenticated peer
 * costs little each (a 64 KiB frame limit, a 5 s deadline), and this bounds
 * how many it may hold at once.
 */
export const MAX_PENDING_HELLOS = 256;
export const WORKER_GATEWAY_PATH = "/v1/workers/connect";

/** What a resume for a worker this replica never held comes to (cluster takeover). */
export type TakeoverResult = { ok: true; connection: WorkerConnection } | { ok: false; code: ErrorCode; message: string };

export interface WorkerGatewayOptions {
  joinTokens: JoinTokens;
  /** Launches waiting for their worker (a session's, or the warm pool's). */
  launches: LaunchTable;
  heartbeatIntervalMs: number;
  logger: Logger;
  /** Keep each worker's resume token for its life (a cluster: the shared store holds its digest). Default: rotate on every resume. */
  keepResumeTokens?: boolean;
  /** A worker joined (after welcome): a cluster records its resume digest. */
  onJoined?(connection: WorkerConnection, binding: JoinTokenBinding): void;
  /** A resume for a worker this replica does not hold: a replica taking it over from another answers; undefined refuses it. */
  takeover?(socket: WebSocket, resume: WorkerResume): TakeoverResult | undefined;
}

/**
 * `GET /v1/workers/connect`: where workers dial back. No API key: the join
 * token in the first frame is the credential. Never logs the token.
 */
export function registerWorkerGateway(app: FastifyInstance, options: WorkerGatewayOptions): void {
  // Resumable workers by id, from welcome until they are gone for good (not merely disconnected).
  const resumable = new Map<string, WorkerConnection>();
  const pending = { count: 0 };
  app.get(WORKER_GATEWAY_PATH, { websocket: true }, (socket) => acceptWorker(socket, options, resumable, pending));
  app.addHook("onClose", async () => {
    for (const connection of [...resumable.values()]) connection.close(WorkerCloseCodes.shutdown, "orchestrator shutting down");
  });
}

function acceptWorker(socket: WebSocket, options: WorkerGatewayOptions, resumable: Map<string, WorkerConnection>, pending: { count: number }): void {
  const logger = options.logger.child({ component: "worker-gateway" });
  // Until the hello is verified: small frames only (a hello is a few hundred bytes).
  setMaxPayload(socket, HELLO_MAX_PAYLOAD_BYTES);
  if (pending.count >= MAX_PENDING_HELLOS) {
    logger.warn({ pending: pending.count }, "too many workers waiting to say hello; refusing one");
    socket.close(1013, "too many pending connections; retry");
    return;
  }
  pending.count += 1;
  let counted = true;
  const uncount = (): void => {
    if (!counted) return;
    counted = false;
    pending.count -= 1;
  };
  let settled = false;
  const helloTimer = setTimeout(() => {
    if (settled) return;
    settled = true;
    uncount();
    logger.warn("worker sent no hello in time");
    socket.close(WorkerCloseCodes.helloTimeout, "hello expected");
    // A peer that does not answer the close handshake either is dropped.
    setTimeout(() => socket.terminate(), 2000).unref();
  }, HELLO_TIMEOUT_MS);

  const refuse = (code: ErrorCode, message: string, closeCode: number = WorkerCloseCodes.joinRefused): void => {
    logger.warn({ code }, "worker join refused");
    send(socket, { type: "join_refused", code, message });
    socket.close(closeCode, code);
  };

  const onFirstFrame = (data: RawData, isBinary: boolean): void => {
    if (settled) return;
    settled = true;
    clearTimeout(helloTimer);
    uncount();
    socket.off("message", onFirstFrame);
    if (isBinary) return refuse(ErrorCodes.PROTOCOL_HELLO_EXPECTED, "The first frame must be a JSON hello.");
    const decoded = workerCodec.decode(toBuffer(data).toString("utf8"));
    if (!decoded.ok) return refuse(decoded.code, decoded.message);
    const hello = decoded.value;
    if (hello.type === "resume") return resumeWorker(hello);
    if (hello.type !== "hello") return refuse(ErrorCodes.PROTOCOL_HELLO_EXPECTED, `The first frame must be hello, got '${hello.type}'.`);
    if (!isCompatibleProtocolVersion(hello.protocolVersion)) {
      return refuse(
        ErrorCodes.PROTOCOL_VERSION_UNSUPPORTED,
        `Protocol version ${hello.protocolVersion} is not supported; this orchestrator speaks ${PROTOCOL_VERSION}. Update the worker.`,
        WorkerCloseCodes.versionUnsupported,
      );
    }
    void options.joinTokens.consume(hello.token).then(
      (check) => {
        if (socket.readyState !== socket.OPEN) return;
        if (!check.ok) return refuse(check.code, check.message);
        join(hello.capabilities, hello.agentVersion, check.binding);
      },
      (error: unknown) => {
        logger.warn({ err: error }, "could not check a join token");
        refuse(ErrorCodes.STORE_UNAVAILABLE, "The join token could not be checked right now; retry.", 1013);
      },
    );
  };

  const join = (capabilities: readonly string[], agentVersion: string, binding: JoinTokenBinding): void => {
    const check = { binding };
    const launch = options.launches.forWorker(check.binding.launchId);
    const sessionId = check.binding.sessionId;
    const workerId = `wrk_${randomUUID().replaceAll("-", "")}`;
    const workerLogger = logger.child({ workerId, sessionId, agentVersion });
    if (!launch || !launch.awaitingConnection) {
      return refuse(ErrorCodes.WORKER_TOKEN_INVALID, "The launch this token was minted for no longer waits for a worker.");
    }
    const canResume = capabilities.includes(WorkerCapabilities.resume);
    const connection = new WorkerConnection(socket, workerId, sessionId, options.heartbeatIntervalMs, workerLogger, { resumable: canResume, rotateResumeToken: options.keepResumeTokens !== true });
    if (!launch.attachWorker(connection)) {
      connection.close(WorkerCloseCodes.replaced, "launch already has a worker");
      return;
    }
    let resumeToken: string | undefined;
    if (canResume) {
      resumeToken = connection.issueResumeToken();
      resumable.set(workerId, connection);
      connection.onClosed(() => resumable.delete(workerId));
    }
    // sessionId is null for a warm-pool worker: it is bound to a session only when claimed.
    // Unsequenced: the handshake comes before the numbered frames.
    setMaxPayload(socket, WORKER_MAX_PAYLOAD_BYTES);
    connection.sendControl({ type: "welcome", workerId, sessionId, heartbeatIntervalMs: options.heartbeatIntervalMs, ...(resumeToken ? { resumeToken } : {}) });
    options.onJoined?.(connection, check.binding);
    workerLogger.info({ capabilities }, "worker joined");
  };

  /** A worker whose link dropped comes back with the resume token from welcome (never its join token). */
  const resumeWorker = (resume: WorkerResume): void => {
    if (!isCompatibleProtocolVersion(resume.protocolVersion)) {
      return refuse(ErrorCodes.PROTOCOL_VERSION_UNSUPPORTED, `Protocol version ${resume.protocolVersion} is not supported.`, WorkerCloseCodes.versionUnsupported);
    }
    const connection = resumable.get(resume.workerId);
    if (!connection) {
      const taken = options.takeover?.(socket, resume);
      if (taken?.ok) {
        setMaxPayload(socket, WORKER_MAX_PAYLOAD_BYTES);
        resumable.set(resume.workerId, taken.connection);
        taken.connection.onClosed(() => resumable.delete(resume.workerId));
        return;
      }
      if (taken) return refuse(taken.code, taken.message);
      return refuse(ErrorCodes.WORKER_RESUME_REFUSED, "No worker with this id waits for a resume: it was declared lost, or this orchestrator restarted.");
    }
    setMaxPayload(socket, WORKER_MAX_PAYLOAD_BYTES);
    const result = connection.resumeLink(socket, resume.resumeToken, resume.lastSeqReceived);
    if (!result.ok) return refuse(result.code, result.message);
  };

  socket.on("message", onFirstFrame);
  socket.once("close", () => {
    clearTimeout(helloTimer);
    settled = true;
    uncount();
  });
  socket.on("error", (error) => logger.debug({ err: error }, "worker socket error before hello"));
}

function send(socket: WebSocket, message: OrchestratorMessage): void {
  socket.send(JSON.stringify(message));
}
