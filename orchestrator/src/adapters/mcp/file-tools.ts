import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { mimeTypeOf } from "../common/rich-output.js";
import { MNT_DATA, toWorkspaceDirectory, toWorkspacePath } from "../common/workspace-paths.js";
import { inFlight, MAX_READ_BYTES, sessionNotes, type ToolContext } from "./tool-context.js";
import { toolError } from "./tool-result.js";

export const listFilesInput = {
  path: z.string().optional().describe("Only files under this directory (relative, or under /mnt/data/). Default: the whole workspace."),
};
export const readFileInput = {
  path: z.string().describe("The file: relative to the workspace (e.g. 'out/result.csv') or under /mnt/data/."),
};
export const writeFileInput = {
  path: z.string().describe("Where to write: relative to the workspace (e.g. 'data/input.csv') or under /mnt/data/."),
  content: z.string().describe("The file's content: UTF-8 text, or base64 when encoding is 'base64'."),
  encoding: z.enum(["utf8", "base64"]).optional().describe("'utf8' (default) or 'base64' for binary content."),
};

const IMAGE_TYPES: ReadonlySet<string> = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

export async function listFiles(context: ToolContext, args: { path?: string | undefined }): Promise<CallToolResult> {
  return inFlight(context, async () => {
    const directory = toWorkspaceDirectory(args.path);
    const acquired = await context.slot.acquire();
    const listing = await acquired.session.files.list();
    const prefix = directory === "" ? "" : `${directory}/`;
    const files = listing.files.filter((file) => file.path.startsWith(prefix)).sort((a, b) => a.path.localeCompare(b.path));
    const lines = files.map((file) => `${file.path}\t${file.size} bytes\t${file.modifiedAt}`);
    const header = files.length === 0 ? `No files${prefix ? ` under ${directory}/` : ""} in the workspace.` : `${files.length} file(s) (path, size, modified; also under ${MNT_DATA}/):`;
    const notes = [...sessionNotes(acquired), ...(listing.truncated ? ["The listing was cut at 10000 files."] : [])];
    return { content: [{ type: "text", text: [header, ...lines, ...notes.map((note) => `Note: ${note}`)].join("\n") }] };
  });
}

export async function readFile(context: ToolContext, args: { path: string }): Promise<CallToolResult> {
  return inFlight(context, async () => {
    const path = toWorkspacePath(args.path);
    const { session } = await context.slot.acquire();
    const { size, stream } = await session.files.download(path);
    if (size > MAX_READ_BYTES) {
      stream.destroy();
      return toolError(
        `${path} is ${size} bytes; read_file returns at most ${MAX_READ_BYTES} bytes. Use run_code to read the part you need (e.g. pandas.read_csv(..., nrows=100), or open('${path}').read(4096)).`,
      );
    }
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    const bytes = Buffer.concat(chunks);
    const mimeType = mimeTypeOf(path);
    const text = utf8Text(bytes);
    if (text !== undefined && !IMAGE_TYPES.has(mimeType)) return { content: [{ type: "text", text }] };
    if (IMAGE_TYPES.has(mimeType)) return { content: [{ type: "image", data: bytes.toString("base64"), mimeType }] };
    return {
      content: [
        { type: "text", text: `${path} is binary (${mimeType}, ${bytes.byteLength} bytes); its bytes follow as base64.` },
        { type: "resource", resource: { uri: `file://${MNT_DATA}/${encodeURI(path)}`, mimeType, blob: bytes.toString("base64") } },
      ],
    };
  });
}

export async function writeFile(context: ToolContext, args: { path: string; content: string; encoding?: "utf8" | "base64" | undefined }): Promise<CallToolResult> {
  return inFlight(context, async () => {
    const path = toWorkspacePath(args.path);
    const base64 = args.encoding === "base64";
    if (base64 && !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(args.content)) return toolError("content is not valid base64 (encoding: 'base64').");
    const bytes = Buffer.from(args.content, base64 ? "base64" : "utf8");
    const { session } = await context.slot.acquire();
    const stored = await session.files.upload(path, bytesSource(bytes), context.config.maxUploadBytes);
    return { content: [{ type: "text", text: `Wrote ${stored.size} bytes to ${path} (${MNT_DATA}/${path} where mounted).` }] };
  });
}

export async function restartKernel(context: ToolContext): Promise<CallToolResult> {
  return inFlight(context, async () => {
    const acquired = await context.slot.acquire();
    if (!acquired.started) await acquired.session.restart();
    return { content: [{ type: "text", text: "The kernel was restarted: variables, imports and definitions are gone; files in the workspace stay." }] };
  });
}

/** The text of UTF-8 bytes without NUL characters; undefined for anything else (binary). */
function utf8Text(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Bytes already in memory as the byte source an upload reads. */
export async function* bytesSource(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}
