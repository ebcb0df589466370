import { FileEntry, FileListResponse, checkWorkspacePath, schemaGuard } from "@tether/shared";
import { InvalidRequestError } from "./errors.js";
import type { CallOptions, HttpClient } from "./http.js";

const isFileEntry = schemaGuard(FileEntry);
const isFileList = schemaGuard(FileListResponse);
/** Uploads answer once every byte is stored: they get longer than ordinary calls unless the call says otherwise. */
const DEFAULT_UPLOAD_TIMEOUT_MS = 600_000;

/**
 * A session's workspace files (the kernel's working directory: `open("a.csv")`
 * in code and `files.upload("a.csv", …)` name the same file). A call on a
 * stopped session resumes it first. Paths are workspace-relative, `/`-separated.
 */
export class SessionFiles {
  constructor(
    private readonly http: HttpClient,
    private readonly sessionId: string,
  ) {}

  /** Every regular file, recursively (at most 10 000: then `truncated`). */
  async list(options: CallOptions = {}): Promise<FileListResponse> {
    return this.http.json({ method: "GET", path: `${this.base()}/files`, ...options }, isFileList);
  }

  /** Creates or replaces a file (parent directories are created). */
  async upload(path: string, data: Blob | Uint8Array | string, options: CallOptions = {}): Promise<FileEntry> {
    return this.http.json({ method: "PUT", path: this.filePath(path), bytes: data, timeoutMs: DEFAULT_UPLOAD_TIMEOUT_MS, ...options }, isFileEntry);
  }

  /** The file's bytes. */
  async download(path: string, options: CallOptions = {}): Promise<Uint8Array> {
    const response = await this.http.request({ method: "GET", path: this.filePath(path), ...options });
    return new Uint8Array(await response.arrayBuffer());
  }

  /** The file as UTF-8 text. */
  async downloadText(path: string, options: CallOptions = {}): Promise<string> {
    const response = await this.http.request({ method: "GET", path: this.filePath(path), ...options });
    return response.text();
  }

  /** The file as a Blob (browsers: `URL.createObjectURL(blob)` for a download link). */
  async downloadBlob(path: string, options: CallOptions = {}): Promise<Blob> {
    const response = await this.http.request({ method: "GET", path: this.filePath(path), ...options });
    return response.blob();
  }

  /** Deletes a file (not a directory). */
  async remove(path: string, options: CallOptions = {}): Promise<void> {
    return this.http.call({ method: "DELETE", path: this.filePath(path), ...options });
  }

  private base(): string {
    return `/v1/sessions/${encodeURIComponent(this.sessionId)}`;
  }

  /** Checked with the server's own rules before anything is sent, then encoded segment by segment. */
  private filePath(path: string): string {
    const check = checkWorkspacePath(path);
    if (!check.ok) throw new InvalidRequestError({ code: check.code, message: check.message, hint: "Use a workspace-relative path with '/' separators, without '..'." });
    return `${this.base()}/files/${check.path.split("/").map(encodeURIComponent).join("/")}`;
  }
}
