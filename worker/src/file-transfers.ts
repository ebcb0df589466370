import type { FileHandle } from "node:fs/promises";
import type { Logger } from "pino";
import { ErrorCodes, TetherError, encodeBinaryFrame, errorMessage, type ErrorDetail, type WorkerMessage } from "@tether/shared";
import { FlowSender, type StreamRegistry } from "./byte-streams.js";
import { toErrorDetail } from "./errors.js";
import type { Workspace } from "./workspace-files.js";

export interface TransferContext {
  workspace: Workspace;
  streams: StreamRegistry;
  send(msg: WorkerMessage): void;
  sendBinary(frame: Uint8Array): void;
  logger: Logger;
}

/** file_download: call_result {size}, then flow-controlled binary frames, then stream_end. */
export async function startDownload(ctx: TransferContext, callId: string, rawPath: string, streamId: number): Promise<void> {
  let opened;
  try {
    opened = await ctx.workspace.openRead(rawPath);
  } catch (error) {
    ctx.send({ type: "call_result", callId, ok: false, error: toErrorDetail(error) });
    return;
  }
  ctx.send({ type: "call_result", callId, ok: true, value: { size: opened.size } });
  const sender = new FlowSender(streamId, opened.stream, {
    sendChunk: (id, payload) => ctx.sendBinary(encodeBinaryFrame(id, payload)),
    sendEnd: (id, error) => ctx.send({ type: "stream_end", streamId: id, ...(error ? { error } : {}) }),
  });
  ctx.streams.addSender(sender);
  try {
    const bytes = await sender.done;
    ctx.logger.debug({ path: rawPath, bytes }, "download sent");
  } catch (error) {
    ctx.logger.warn({ err: error, path: rawPath }, "download failed");
  }
}

/**
 * file_upload: registers the stream at once (frames may follow the request
 * immediately), writes each chunk in order to a temp file, acks it once
 * written, and on stream_end renames the file into place and answers {size}.
 */
export function startUpload(ctx: TransferContext, callId: string, rawPath: string, streamId: number): void {
  let size = 0;
  let failed: ErrorDetail | undefined;
  let target: { handle: FileHandle; commit(): Promise<void>; discard(): Promise<void> } | undefined;
  let answered = false;
  const answerError = (error: ErrorDetail): void => {
    if (answered) return;
    answered = true;
    ctx.send({ type: "call_result", callId, ok: false, error });
  };
  const fail = (error: unknown): void => {
    failed ??= error instanceof TetherError ? toErrorDetail(error) : { code: ErrorCodes.FILE_IO, message: `Writing '${rawPath}' failed: ${errorMessage(error)}` };
    // Answer at once: the orchestrator may be waiting for credit that will never come.
    answerError(failed);
  };
  let chain: Promise<void> = ctx.workspace.openWrite(rawPath).then(
    (opened) => {
      target = opened;
    },
    (error: unknown) => fail(error),
  );
  ctx.streams.addSink(streamId, {
    chunk(payload) {
      chain = chain.then(async () => {
        if (failed || !target) return;
        try {
          await target.handle.write(payload);
          size += payload.byteLength;
          ctx.send({ type: "stream_ack", streamId, bytes: payload.byteLength });
        } catch (error) {
          fail(error);
        }
      });
    },
    end(error) {
      chain = chain.then(async () => {
        if (error) failed ??= error;
        if (failed || !target) {
          await target?.discard();
          answerError(failed ?? { code: ErrorCodes.FILE_IO, message: "The upload ended without a file." });
          return;
        }
        try {
          await target.commit();
          answered = true;
          ctx.send({ type: "call_result", callId, ok: true, value: { size } });
        } catch (commitError) {
          await target.discard();
          fail(commitError);
        }
      });
    },
    abort() {
      chain = chain.then(() => target?.discard());
    },
  });
}
