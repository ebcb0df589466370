import { errorMessage } from "@tether/shared";
import type { ResolvedConfig } from "./config.js";
import { AbortError, ClientErrorCodes, TetherError } from "./errors.js";
import { errorFromResponse, transportError } from "./transport-errors.js";

/** Options every REST call takes (per call > client > default). */
export interface CallOptions {
  /** Aborts the call (AbortError). */
  signal?: AbortSignal;
  /** This call's timeout; default the client's requestTimeoutMs. */
  timeoutMs?: number;
}

export interface HttpRequest extends CallOptions {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path under the base URL, already encoded, e.g. `/v1/sessions/ses_1/files/a%20b.txt`. */
  path: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as raw bytes (file uploads). */
  bytes?: Blob | Uint8Array | string;
}

/** fetch with the credential, timeouts, abort and the transport error table. */
export class HttpClient {
  constructor(private readonly config: ResolvedConfig) {}

  get baseUrl(): string {
    return this.config.baseUrl;
  }

  /** Makes the request; resolves with the response when it is a 2xx, else throws the mapped TetherError. */
  async request(request: HttpRequest): Promise<Response> {
    const response = await this.fetchRaw(request);
    if (response.ok) return response;
    throw errorFromResponse(response.status, await readJson(response), response.headers.get("retry-after"), `${request.method} ${request.path}`);
  }

  /** A GET whose error answer is read rather than thrown (the stream's diagnosis of a failed upgrade). */
  async probe(path: string, options: CallOptions = {}): Promise<{ status: number; body: unknown; retryAfter: string | null }> {
    const response = await this.fetchRaw({ method: "GET", path, ...options });
    return { status: response.status, body: await readJson(response), retryAfter: response.headers.get("retry-after") };
  }

  private async fetchRaw(request: HttpRequest): Promise<Response> {
    const context = `${request.method} ${request.path}`;
    if (request.signal?.aborted) throw abortError(context, request.signal);
    const headers: Record<string, string> = {};
    if (this.config.credential !== undefined) headers.authorization = `Bearer ${this.config.credential}`;
    let body: BodyInit | undefined;
    if (request.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(request.json);
    } else if (request.bytes !== undefined) {
      headers["content-type"] = "application/octet-stream";
      body = typeof request.bytes === "string" || request.bytes instanceof Blob ? request.bytes : blobOf(request.bytes);
    }
    const timeoutMs = request.timeoutMs ?? this.config.requestTimeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort();
    request.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.config.fetch(`${this.config.baseUrl}${request.path}`, { method: request.method, headers, body, signal: controller.signal });
    } catch (error) {
      if (request.signal?.aborted) throw abortError(context, request.signal);
      if (timedOut) throw transportError("timeout", `${context} got no answer within ${timeoutMs} ms.`, error);
      throw transportError("network", `${context} could not reach ${this.config.baseUrl}: ${errorMessage(error)}`, error);
    } finally {
      // The timeout covers the answer's headers; a body read afterwards (a download) is not cut by it.
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** A JSON answer, checked with `guard` (a schema of @tether/shared). */
  async json<T>(request: HttpRequest, guard: (value: unknown) => value is T): Promise<T> {
    const response = await this.request(request);
    const body = await readJson(response);
    if (!guard(body)) throw transportError("bad_response", `${request.method} ${request.path} answered a body that does not match the API.`);
    return body;
  }

  /** A request whose answer has no body worth reading (204, `{ok:true}`). */
  async call(request: HttpRequest): Promise<void> {
    const response = await this.request(request);
    await response.body?.cancel();
  }
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

function abortError(context: string, signal: AbortSignal): TetherError {
  return new AbortError({ code: ClientErrorCodes.ABORTED, message: `${context} was aborted.`, cause: signal.reason });
}

/** The bytes as a Blob, without a copy unless they live in a SharedArrayBuffer (which Blob parts may not view). */
function blobOf(bytes: Uint8Array): Blob {
  const buffer = bytes.buffer;
  if (buffer instanceof ArrayBuffer) return new Blob([new Uint8Array(buffer, bytes.byteOffset, bytes.byteLength)]);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Blob([copy]);
}
