import type { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { checkWorkspacePath, type FileEntry } from "@tether/shared";
import { sessionOf, type AppContext } from "../app-context.js";
import { tetherError, uploadTooLarge } from "../errors.js";

/**
 * Workspace files, streamed through the worker's connection: neither side
 * ever holds a whole file.
 */
export function registerFileRoutes(scope: FastifyInstance, context: AppContext): void {
  const maxUploadBytes = context.config.maxUploadBytes;

  // Uploads are raw bytes of any type: hand the route the request stream itself.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

  scope.get("/v1/sessions/:id/files", async (request) => sessionOf(context, request).listFiles());

  scope.get("/v1/sessions/:id/files/*", async (request, reply) => {
    const session = sessionOf(context, request);
    const { size, stream } = await session.download(filePath(request));
    reply.header("content-type", "application/octet-stream");
    if (size >= 0) reply.header("content-length", size);
    return reply.send(stream);
  });

  scope.put("/v1/sessions/:id/files/*", { bodyLimit: Number.MAX_SAFE_INTEGER }, async (request): Promise<FileEntry> => {
    const session = sessionOf(context, request);
    const path = filePath(request);
    const declared = Number(request.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxUploadBytes) throw uploadTooLarge(maxUploadBytes);
    const source = (request.body as Readable | undefined) ?? emptySource();
    const value = (await session.upload(path, source, maxUploadBytes)) as Partial<FileEntry> | undefined;
    return {
      path,
      size: typeof value?.size === "number" ? value.size : 0,
      modifiedAt: typeof value?.modifiedAt === "string" ? value.modifiedAt : new Date().toISOString(),
    };
  });

  scope.delete("/v1/sessions/:id/files/*", async (request, reply) => {
    await sessionOf(context, request).deleteFile(filePath(request));
    return reply.code(204).send();
  });
}

/** The decoded `<path>` of the URL, checked before it reaches the worker (which checks symlinks). */
function filePath(request: FastifyRequest): string {
  const raw = (request.params as { "*"?: string })["*"] ?? "";
  const check = checkWorkspacePath(raw);
  if (!check.ok) throw tetherError(check.code, check.message);
  return check.path;
}

async function* emptySource(): AsyncGenerator<Buffer> {
  // A PUT without a body creates an empty file.
}
