import { Type } from "@sinclair/typebox";
import { ErrorResponse, type FileEntry } from "@tether/shared";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ErrorCodes, tetherError, uploadTooLarge } from "../../errors.js";
import type { RouteScope } from "../../routes/route-context.js";
import { toWorkspaceDirectory, toWorkspacePath } from "../common/workspace-paths.js";
import { DS_PATH, wantsLegacyShape, type DsContext } from "./ds-context.js";
import { filePathOf, fileResource, legacyFileList, listDirectory, uploadedFile } from "./ds-files.js";
import type { IdentifiedSession } from "./ds-sessions.js";
import { ContentParams, DsQuery, FileNameParams, FileResource, FileResourceList, LegacyFileList } from "./ds-schemas.js";
import { parseMultipart } from "./multipart.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };
const tags = ["dynamic-sessions"];
/** The service's own upload limit (HTTP 413 above it). */
const SERVICE_MAX_UPLOAD_BYTES = 128 * 1024 * 1024;
/** Room for the multipart framing around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** Files: the 2024-02-02-preview routes (`files/upload`, `files`, `files/content/{name}`) and the newer resource routes. */
export function registerDsFileRoutes(scope: RouteScope, ds: DsContext): void {
  const maxFileBytes = Math.min(ds.app.config.maxUploadBytes, SERVICE_MAX_UPLOAD_BYTES);
  const uploadOptions = {
    bodyLimit: maxFileBytes + MULTIPART_OVERHEAD_BYTES,
    onRequest: async (request: FastifyRequest) => {
      const declared = Number(request.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxFileBytes + MULTIPART_OVERHEAD_BYTES) throw uploadTooLarge(maxFileBytes);
    },
  };
  const upload = async (request: { tenant: string; query: DsQuery; body: unknown; headers: FastifyRequest["headers"] }): Promise<FileEntry> => {
    if (!Buffer.isBuffer(request.body)) throw tetherError(ErrorCodes.REQUEST_INVALID, "The upload has no body.", { hint: "Send multipart/form-data with a 'file' part." });
    const { path, data } = uploadedFile(parseMultipart(request.body, request.headers["content-type"]), request.query.path);
    if (data.byteLength > maxFileBytes) throw uploadTooLarge(maxFileBytes);
    const entry = await ds.sessions.resolve(request.tenant, request.query.identifier);
    const { session } = await entry.slot.acquire();
    const stored = await session.files.upload(path, singleChunk(data), maxFileBytes);
    return { path, size: stored.size, modifiedAt: stored.modifiedAt ?? new Date().toISOString() };
  };
  const filesOf = async (request: { tenant: string; query: DsQuery }): Promise<readonly FileEntry[]> => {
    const { session } = await (await ds.sessions.resolve(request.tenant, request.query.identifier)).slot.acquire();
    return (await session.files.list()).files;
  };

  scope.post(
    `${DS_PATH}/files/upload`,
    { ...uploadOptions, schema: { tags, summary: "Upload a file (2024-02-02-preview; multipart field 'file', filename may start with /mnt/data/)", querystring: DsQuery, response: { 200: LegacyFileList, ...errors } } },
    async (request) => legacyFileList([await upload(request)]),
  );
  scope.post(
    `${DS_PATH}/files`,
    { ...uploadOptions, schema: { tags, summary: "Upload a file into `path` (2024-10-02-preview and later; multipart field 'file')", querystring: DsQuery, response: { 200: FileResource, ...errors } } },
    async (request) => fileResource(await upload(request)),
  );
  scope.get(
    `${DS_PATH}/files`,
    {
      schema: {
        tags,
        summary: "List files: {value:[{properties:{filename,size,lastModifiedTime}}]} for 2024-02-02-preview (or no api-version), {value:[FileResource],nextLink} for later versions",
        querystring: DsQuery,
        response: { 200: Type.Union([LegacyFileList, FileResourceList]), ...errors },
      },
    },
    async (request) => {
      const files = await filesOf(request);
      if (wantsLegacyShape(request.query["api-version"])) return legacyFileList(files);
      const recursive = request.query.recursive?.toLowerCase() === "true";
      return { value: listDirectory(files, toWorkspaceDirectory(request.query.path), recursive), nextLink: null };
    },
  );
  scope.get(
    `${DS_PATH}/files/content/*`,
    { schema: { tags, summary: "Download a file's bytes (2024-02-02-preview)", querystring: DsQuery, params: ContentParams } },
    async (request, reply) => sendFile(reply, await ds.sessions.resolve(request.tenant, request.query.identifier), toWorkspacePath(request.params["*"])),
  );
  scope.get(
    `${DS_PATH}/files/:name`,
    { schema: { tags, summary: "One file's metadata (in `path`)", querystring: DsQuery, params: FileNameParams, response: { 200: FileResource, ...errors } } },
    async (request) => {
      const path = filePathOf(request.params.name, request.query.path);
      const file = (await filesOf(request)).find((candidate) => candidate.path === path);
      if (!file) throw tetherError(ErrorCodes.FILE_NOT_FOUND, `No file '${path}' in session '${request.query.identifier}'.`, { hint: "List the files with GET files." });
      return fileResource(file);
    },
  );
  scope.delete(
    `${DS_PATH}/files/:name`,
    { schema: { tags, summary: "Delete a file (in `path`)", querystring: DsQuery, params: FileNameParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { session } = await (await ds.sessions.resolve(request.tenant, request.query.identifier)).slot.acquire();
      await session.files.delete(filePathOf(request.params.name, request.query.path));
      return reply.code(204).send(null);
    },
  );
  scope.get(
    `${DS_PATH}/files/:name/content`,
    { schema: { tags, summary: "Download a file's bytes (in `path`)", querystring: DsQuery, params: FileNameParams } },
    async (request, reply) => sendFile(reply, await ds.sessions.resolve(request.tenant, request.query.identifier), filePathOf(request.params.name, request.query.path)),
  );
}

async function sendFile(reply: FastifyReply, entry: IdentifiedSession, path: string): Promise<FastifyReply> {
  const { session } = await entry.slot.acquire();
  const { size, stream } = await session.files.download(path);
  void reply.header("content-type", "application/octet-stream");
  void reply.header("content-length", size);
  return reply.send(stream);
}

async function* singleChunk(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}
