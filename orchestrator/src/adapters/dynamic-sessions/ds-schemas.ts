import { Type, type Static } from "@sinclair/typebox";

/**
 * The Azure Container Apps dynamic sessions data plane as its clients send
 * and read it (LangChain, Semantic Kernel Python and .NET, AutoGen,
 * LlamaIndex): two generations. 2024-02-02-preview wraps the execute body in
 * `properties` and answers `{properties: {status: "Success"|"Failure", ...}}`;
 * 2024-10-02-preview and later (`executions`) take a flat body and answer
 * `{status: "Succeeded"|"Failed", result: {...}}`. Bodies are open
 * (additional fields are ignored): clients add fields across versions.
 */

/** Longest identifier a route accepts. */
export const MAX_IDENTIFIER_LENGTH = 128;

/** Every route takes `identifier` (the session, private to the tenant) and `api-version` (any value). */
export const DsQuery = Type.Object(
  {
    identifier: Type.String({ minLength: 1, maxLength: MAX_IDENTIFIER_LENGTH, description: "Names a session private to the tenant; created on first use." }),
    "api-version": Type.Optional(Type.String({ description: "Any value; 2024-02-02-preview and the 2024-10-02/2025-02-02/2025-10-02 previews are recognised." })),
    path: Type.Optional(Type.String({ description: "Directory (relative, or under /mnt/data) for the files routes of the newer API." })),
    recursive: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type DsQuery = Static<typeof DsQuery>;

export const DsMetadataQuery = Type.Object({ "api-version": Type.Optional(Type.String()) }, { additionalProperties: true });

/** 2024-02-02-preview `code/execute` (and the older `python/execute`). */
export const LegacyExecuteBody = Type.Object({
  properties: Type.Object({
    codeInputType: Type.Optional(Type.String({ description: "inline (any case)" })),
    executionType: Type.Optional(Type.String({ description: "synchronous (any case)" })),
    code: Type.String(),
    timeoutInSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  }),
});
export type LegacyExecuteBody = Static<typeof LegacyExecuteBody>;

/**
 * The service is .NET: its bodies carry `$id` reference ids ("1", "2", ...),
 * which some clients' fixtures keep. They are sent but not declared here (a
 * property named `$id` reads as a schema id to JSON Schema tools), so these
 * objects allow additional properties.
 */
const dotnetIds = { additionalProperties: true };

export const LegacyExecuteProperties = Type.Object({
  status: Type.Union([Type.Literal("Success"), Type.Literal("Failure")]),
  stdout: Type.String(),
  stderr: Type.String(),
  result: Type.Unknown({ description: "The last expression as JSON (numbers, strings, booleans), else its text/plain; {type:'image',format,base64_data} for a plot; '' when none" }),
  executionTimeInMilliseconds: Type.Integer(),
}, dotnetIds);
export type LegacyExecuteProperties = Static<typeof LegacyExecuteProperties> & { $id: string };

export const LegacyExecuteResponse = Type.Object({
  properties: LegacyExecuteProperties,
  /** `python/execute` clients read these at the top level. */
  status: Type.Optional(Type.String()),
  stdout: Type.Optional(Type.String()),
  stderr: Type.Optional(Type.String()),
  result: Type.Optional(Type.Unknown()),
}, dotnetIds);

export const LegacyFileEntry = Type.Object(
  {
    properties: Type.Object(
      {
        /** Workspace-relative; the client's full path is /mnt/data/<filename>. */
        filename: Type.String(),
        size: Type.Integer(),
        lastModifiedTime: Type.String(),
      },
      dotnetIds,
    ),
  },
  dotnetIds,
);
export const LegacyFileList = Type.Object({ value: Type.Array(LegacyFileEntry) }, dotnetIds);
export interface LegacyFileList {
  $id: string;
  value: { $id: string; properties: { $id: string; filename: string; size: number; lastModifiedTime: string } }[];
}

/** 2024-10-02-preview and later `executions`: code, or a shell command (run with /bin/sh in the session). */
export const ExecutionBody = Type.Object({
  codeInputType: Type.Optional(Type.String({ description: "Inline, InlineBase64 or InlineText (any case)" })),
  executionType: Type.Optional(Type.String({ description: "Synchronous (default) or Asynchronous (any case)" })),
  code: Type.Optional(Type.String()),
  shellCommand: Type.Optional(Type.String()),
  execCommandAndArgs: Type.Optional(Type.Unknown({ description: "Not supported: use shellCommand" })),
  stdin: Type.Optional(Type.String({ description: "Standard input of shellCommand" })),
  timeoutInSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  outputStreamsMaxLength: Type.Optional(Type.Integer({ minimum: 0 })),
  useEmptyKernel: Type.Optional(Type.Boolean()),
  returnJupyterFormatExecutionResult: Type.Optional(Type.Boolean()),
});
export type ExecutionBody = Static<typeof ExecutionBody>;

export const ExecutionResource = Type.Object({
  id: Type.String(),
  identifier: Type.String(),
  executionType: Type.String(),
  /** NotStarted | Running | Succeeded | Failed | Canceled; for shellCommand the exit code ("0") once it ended. */
  status: Type.String(),
  result: Type.Optional(
    Type.Object({
      stdout: Type.String(),
      stderr: Type.String(),
      /** The last expression's text/plain (a string), "" when none; absent for shell commands. */
      executionResult: Type.Optional(Type.Union([Type.String(), Type.Null()])),
      executionTimeInMilliseconds: Type.Integer(),
    }),
  ),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
export type ExecutionResource = Static<typeof ExecutionResource>;

export const FileResource = Type.Object({
  name: Type.String(),
  directory: Type.String(),
  type: Type.Union([Type.Literal("File"), Type.Literal("Directory")]),
  contentType: Type.String(),
  sizeInBytes: Type.Integer(),
  lastModifiedAt: Type.String(),
});
export type FileResource = Static<typeof FileResource>;
export const FileResourceList = Type.Object({ value: Type.Array(FileResource), nextLink: Type.Null() });

export const FileNameParams = Type.Object({ name: Type.String() });
export const ExecutionIdParams = Type.Object({ id: Type.String() });
export const ContentParams = Type.Object({ "*": Type.String() });

export const SessionResource = Type.Object({
  identifier: Type.String(),
  createdAt: Type.String(),
  lastAccessedAt: Type.String(),
  /** When the session would scale to zero if idle (it resumes on the next call; only DELETE ends it). */
  expireAt: Type.String(),
  etag: Type.String(),
});

export const PoolMetadata = Type.Object({
  runtimes: Type.Array(Type.Object({ name: Type.String(), version: Type.String() })),
  preInstalledPackages: Type.Array(Type.Object({ name: Type.String(), version: Type.String() })),
  jupyterKernel: Type.Object({ name: Type.String(), version: Type.String() }),
  createdAt: Type.String(),
  lastUpdatedAt: Type.String(),
});
