import { Transform, pipeline, type Readable } from "node:stream";
import { Type } from "@sinclair/typebox";
import { ErrorResponse, FileEntry, FileListResponse, checkWorkspacePath } from "@tether/shared";
import { SessionParams, sessionOf, type AppContext, type RouteScope } from "./route-context.js";
import { tetherError, uploadTooLarge } from "../errors.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };
/** `:id` and the workspace path after `files/`. */
const FileParams = Type.Object({ id: Type.String(), "*": Type.String() });

/**
 * Workspace files, streamed through the worker's connection: neither side
 * ever holds a whole file.
 */
export function registerFileRoutes(scope: RouteScope, context: AppContext): void {
  const maxUploadBytes = context.config.maxUploadBytes;

  // Uploads are raw bytes of any type: hand the route the request stream itself.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

  scope.get("/v1/sessions/:id/files", { schema: { params: SessionParams, response: { 200: FileListResponse, ...errors } } }, async (request) =>
    sessionOf(context, request).files.list(),
  );

  scope.get("/v1/sessions/:id/files/*", { schema: { params: FileParams } }, async (request, reply) => {
    const { size, stream } = await sessionOf(context, request).files.download(filePath(request.params["*"]));
    reply.header("content-type", "application/octet-stream");
    reply.header("content-length", size);
    const guarded = exactLength(size, () => reply.raw.destroy());
    // pipeline, not pipe: a download the worker breaks off must end the response too.
    pipeline(stream, guarded, (error) => {
      if (error) reply.raw.destroy();
    });
    return reply.send(guarded);
  });

  scope.put(
    "/v1/sessions/:id/files/*",
    { bodyLimit: Number.MAX_SAFE_INTEGER, schema: { params: FileParams, response: { 200: FileEntry, ...errors } } },
    async (request) => {
      const session = sessionOf(context, request);
      const path = filePath(request.params["*"]);
      const declared = Number(request.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxUploadBytes) throw uploadTooLarge(maxUploadBytes);
      const stored = await session.files.upload(path, readableBody(request.body), maxUploadBytes);
      return { path, size: stored.size, modifiedAt: stored.modifiedAt ?? new Date().toISOString() };
    },
  );

  scope.delete("/v1/sessions/:id/files/*", { schema: { params: FileParams, response: { 204: Type.Null(), ...errors } } }, async (request, reply) => {
    await sessionOf(context, request).files.delete(filePath(request.params["*"]));
    return reply.code(204).send(null);
  });
}

/** The decoded `<path>` of the URL, checked before it reaches the worker (which checks symlinks). */
function filePath(raw: string): string {
  const check = checkWorkspacePath(raw);
  if (!check.ok) throw tetherError(check.code, check.message);
  return check.path;
}

/** The upload's byte stream (the catch-all parser hands over the request itself); nothing: an empty file. */
function readableBody(body: unknown): AsyncIterable<Buffer | Uint8Array> {
  return isReadable(body) ? body : emptySource();
}

function isReadable(value: unknown): value is Readable {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value && "pipe" in value;
}

async function* emptySource(): AsyncGenerator<Buffer> {
  // A PUT without a body creates an empty file.
}

/**
 * Passes a download through and checks it carries exactly the Content-Length
 * announced (the file's size when it was opened). A file that shrank or grew
 * meanwhile must not leave the client waiting for bytes that never come on a
 * kept-alive socket: `broken` drops the connection so the client sees the
 * truncation at once.
 */
function exactLength(size: number, broken: () => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.byteLength;
      if (seen > size) {
        broken();
        callback(new Error(`the file grew past the ${size} bytes announced`));
        return;
      }
      callback(null, chunk);
    },
    flush(callback) {
      if (seen < size) broken();
      callback();
    },
  });
}
