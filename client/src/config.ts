import { isRecord, stringField } from "@tether/shared";
import { ClientErrorCodes, TetherError } from "./errors.js";

/** How the stream reconnects after a drop: full-jitter exponential backoff, capped. */
export interface ReconnectOptions {
  /** Upper bound of the first delay (the delay is drawn in [0, bound]); default 100 ms. */
  initialDelayMs?: number;
  /** The bound doubles per failed attempt up to this; default 5000 ms. */
  maxDelayMs?: number;
  /** Give up (pending executions reject with ConnectionError) after failing this long; default 120000 ms. */
  giveUpAfterMs?: number;
}

export interface TetherOptions {
  /** The orchestrator, e.g. `http://127.0.0.1:8080`. Default: env TETHER_BASE_URL, else the page's origin in a browser, else http://127.0.0.1:8080. */
  baseUrl?: string;
  /** A tenant's API key (backends only). Default: env TETHER_API_KEY. */
  apiKey?: string;
  /** A session token (`tst_…`, minted by your backend): reaches one session. Default: env TETHER_SESSION_TOKEN. */
  token?: string;
  /** Timeout of each REST call, overridable per call; default 60000 ms (a call on a stopped session resumes it first). Long-running calls (a waiting create, restart) get their own. */
  requestTimeoutMs?: number;
  reconnect?: ReconnectOptions;
  /** A fetch to use instead of the global one (tests, instrumented clients). */
  fetch?: typeof fetch;
}

export interface ResolvedConfig {
  baseUrl: string;
  credential: string | undefined;
  requestTimeoutMs: number;
  reconnect: Required<ReconnectOptions>;
  fetch: typeof fetch;
}

export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_RECONNECT: Required<ReconnectOptions> = { initialDelayMs: 100, maxDelayMs: 5_000, giveUpAfterMs: 120_000 };

/** Options given > environment (Node) > defaults. */
export function resolveConfig(options: TetherOptions, env: Record<string, string | undefined> = processEnv()): ResolvedConfig {
  const apiKey = options.apiKey ?? (options.token === undefined ? env.TETHER_API_KEY : undefined);
  const token = options.token ?? (options.apiKey === undefined ? env.TETHER_SESSION_TOKEN : undefined);
  if (apiKey !== undefined && token !== undefined) {
    throw configError("Both an API key and a session token were given.", "Pass apiKey on a backend, token in a browser: one of the two.");
  }
  const baseUrl = (options.baseUrl ?? env.TETHER_BASE_URL ?? pageOrigin() ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/i.test(baseUrl)) {
    throw configError(`baseUrl '${baseUrl}' is not an http(s) URL.`, "Give the orchestrator's address, e.g. http://127.0.0.1:8080.");
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== "function") throw configError("No fetch is available.", "Use Node 20 or newer, or pass options.fetch.");
  return {
    baseUrl,
    credential: apiKey ?? token,
    requestTimeoutMs: positive(options.requestTimeoutMs, "requestTimeoutMs") ?? DEFAULT_REQUEST_TIMEOUT_MS,
    reconnect: {
      initialDelayMs: positive(options.reconnect?.initialDelayMs, "reconnect.initialDelayMs") ?? DEFAULT_RECONNECT.initialDelayMs,
      maxDelayMs: positive(options.reconnect?.maxDelayMs, "reconnect.maxDelayMs") ?? DEFAULT_RECONNECT.maxDelayMs,
      giveUpAfterMs: positive(options.reconnect?.giveUpAfterMs, "reconnect.giveUpAfterMs") ?? DEFAULT_RECONNECT.giveUpAfterMs,
    },
    // Called unbound: some fetch implementations insist on `this` being globalThis.
    fetch: (input, init) => fetchImpl(input, init),
  };
}

function positive(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw configError(`${name} must be a positive number of milliseconds, not ${value}.`, `Fix ${name}.`);
  return value;
}

function configError(message: string, hint: string): TetherError {
  return new TetherError({ code: ClientErrorCodes.CONFIG, message, hint });
}

/** Node's process.env when there is one (never in a browser). */
function processEnv(): Record<string, string | undefined> {
  const processObject: unknown = Reflect.get(globalThis, "process");
  const env = isRecord(processObject) ? processObject.env : undefined;
  if (!isRecord(env)) return {};
  const read = (name: string) => stringField(env, name);
  return { TETHER_BASE_URL: read("TETHER_BASE_URL"), TETHER_API_KEY: read("TETHER_API_KEY"), TETHER_SESSION_TOKEN: read("TETHER_SESSION_TOKEN") };
}

/** In a browser, the page's own origin (a page served by the orchestrator, like the playground). */
function pageOrigin(): string | undefined {
  const location: unknown = Reflect.get(globalThis, "location");
  const origin = stringField(location, "origin");
  return origin !== undefined && /^https?:/.test(origin) ? origin : undefined;
}
