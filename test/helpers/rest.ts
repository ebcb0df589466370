import { request as httpRequest } from "node:http";
import type { ExecuteBody, ExecuteResponse, FileListResponse, SessionInfo, SessionList } from "@tether/shared";

/** A finished HTTP exchange, body fully read. */
export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text(): string;
  json<T = unknown>(): T;
  /** `error.code` of an error body, or undefined. */
  errorCode(): string | undefined;
}

export interface RequestOptions {
  /** Sent as JSON with content-type application/json. */
  json?: unknown;
  /** Sent as-is (raw bytes or a pre-made string). */
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** false sends no Authorization header. */
  auth?: boolean;
}

/**
 * A tiny REST client. It speaks node:http rather than fetch because fetch
 * normalises `..` and `%2E%2E` path segments away, and the traversal tests
 * need them to reach the server verbatim.
 */
export class RestClient {
  constructor(
    readonly baseUrl: string,
    readonly key: string | undefined,
  ) {}

  /** The same server, another API key (or none). */
  as(key: string | undefined): RestClient {
    return new RestClient(this.baseUrl, key);
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const url = new URL(this.baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    let payload: Buffer | undefined;
    if (options.json !== undefined) {
      payload = Buffer.from(JSON.stringify(options.json));
      headers["content-type"] ??= "application/json";
    } else if (options.body !== undefined) {
      payload = typeof options.body === "string" ? Buffer.from(options.body) : options.body;
    }
    if (payload !== undefined) headers["content-length"] = String(payload.byteLength);
    if (options.auth !== false && this.key !== undefined) headers.authorization = `Bearer ${this.key}`;

    return new Promise<ApiResponse>((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, method, path, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => resolve(toApiResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  // ---- sessions -------------------------------------------------------------

  async createSession(metadata?: Record<string, string>): Promise<SessionInfo> {
    const res = await this.request("POST", "/v1/sessions", { json: metadata ? { metadata } : {} });
    return expectStatus<SessionInfo>(res, 201, "POST /v1/sessions");
  }

  async getSession(id: string): Promise<SessionInfo> {
    return expectStatus<SessionInfo>(await this.request("GET", `/v1/sessions/${id}`), 200, `GET /v1/sessions/${id}`);
  }

  async listSessions(): Promise<SessionList> {
    return expectStatus<SessionList>(await this.request("GET", "/v1/sessions"), 200, "GET /v1/sessions");
  }

  async deleteSession(id: string): Promise<void> {
    const res = await this.request("DELETE", `/v1/sessions/${id}`);
    expectStatus(res, 204, `DELETE /v1/sessions/${id}`);
  }

  /** Executes and expects a 200; the execution's own status is in the body. */
  async execute(sessionId: string, body: ExecuteBody): Promise<ExecuteResponse> {
    const res = await this.request("POST", `/v1/sessions/${sessionId}/execute`, { json: body });
    return expectStatus<ExecuteResponse>(res, 200, `POST /v1/sessions/${sessionId}/execute`);
  }

  async interrupt(sessionId: string): Promise<void> {
    expectStatus(await this.request("POST", `/v1/sessions/${sessionId}/interrupt`), 200, "POST interrupt");
  }

  async restart(sessionId: string): Promise<void> {
    expectStatus(await this.request("POST", `/v1/sessions/${sessionId}/restart`), 200, "POST restart");
  }

  // ---- files ----------------------------------------------------------------

  /** `path` goes into the URL verbatim: encode it yourself when it needs encoding. */
  putFile(sessionId: string, path: string, bytes: Buffer | string): Promise<ApiResponse> {
    return this.request("PUT", `/v1/sessions/${sessionId}/files/${path}`, {
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
  }

  getFile(sessionId: string, path: string): Promise<ApiResponse> {
    return this.request("GET", `/v1/sessions/${sessionId}/files/${path}`);
  }

  deleteFile(sessionId: string, path: string): Promise<ApiResponse> {
    return this.request("DELETE", `/v1/sessions/${sessionId}/files/${path}`);
  }

  async listFiles(sessionId: string): Promise<FileListResponse> {
    return expectStatus<FileListResponse>(await this.request("GET", `/v1/sessions/${sessionId}/files`), 200, "GET files");
  }
}

function toApiResponse(status: number, headers: ApiResponse["headers"], body: Buffer): ApiResponse {
  return {
    status,
    headers,
    body,
    text: () => body.toString("utf8"),
    json: <T>() => JSON.parse(body.toString("utf8")) as T,
    errorCode: () => {
      try {
        const parsed = JSON.parse(body.toString("utf8")) as { error?: { code?: unknown } };
        return typeof parsed.error?.code === "string" ? parsed.error.code : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/** Returns the parsed body, or throws with the status and body so a failure says what the server answered. */
export function expectStatus<T = unknown>(res: ApiResponse, status: number, what: string): T {
  if (res.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${res.text().slice(0, 2000)}`);
  }
  return (res.body.byteLength === 0 ? undefined : res.json<T>()) as T;
}
