import { randomBytes, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AzureClientOverrides } from "@tether/orchestrator";
import { FakeJobExecution, workspaceFor, type FakeExecutionStatus, type FakeTemplate } from "./fake-job-execution.js";

type PipelinePolicy = NonNullable<AzureClientOverrides["additionalPolicies"]>[number]["policy"];
type TokenCredential = NonNullable<AzureClientOverrides["credential"]>;

export interface FakeArmOptions {
  subscriptionId: string;
  resourceGroup: string;
  jobName: string;
  /** The https base URL the SDK is configured with; Location headers point there, as ARM's do. */
  publicEndpoint?: string;
  /** What a started container runs; default the real worker, `node worker/dist/main.js`. */
  workerCommand?: readonly string[];
}

/** One request the fake answered, for assertions. */
export interface ArmRequest {
  method: string;
  /** Path without the query. */
  path: string;
  apiVersion: string | null;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

export interface Refusal {
  status: number;
  code: string;
  message: string;
  retryAfterS?: number;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");
const API_VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
const FAIL_BEFORE_DIAL_BACK_MS = 300;

/**
 * A local fake of the ARM REST API for Microsoft.App jobs: start (bare
 * template body, 202 + Location long-running operation), execution get, list
 * and stop, `{error:{code,message}}` bodies. A start spawns the real worker
 * with the template's env, so launches run for real.
 */
export class FakeArmServer extends EventEmitter {
  readonly requests: ArmRequest[] = [];
  readonly executions = new Map<string, FakeJobExecution>();
  /** Scopes the stub credential was asked for. */
  readonly tokenScopes: string[] = [];
  readonly publicEndpoint: string;
  private readonly refusals: Refusal[] = [];
  private readonly failures: string[] = [];
  private readonly operations = new Map<string, { polls: number; result: () => { status: number; body?: unknown } | undefined }>();
  private readonly jobPath: string;
  private server!: Server;
  private root!: string;

  private constructor(private readonly options: FakeArmOptions) {
    super();
    this.publicEndpoint = (options.publicEndpoint ?? "https://arm.tether.test").replace(/\/+$/, "");
    this.jobPath = `/subscriptions/${options.subscriptionId}/resourceGroups/${options.resourceGroup}/providers/Microsoft.App/jobs/${options.jobName}`;
  }

  static async start(options: FakeArmOptions): Promise<FakeArmServer> {
    const fake = new FakeArmServer(options);
    fake.root = await realpath(await mkdtemp(join(tmpdir(), "tether-fake-arm-")));
    fake.server = createServer((req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Where executions' workspaces live: no process may use it once the fake is closed. */
  get rootDir(): string {
    return this.root;
  }

  /** The next start answers this error instead of starting anything. */
  refuseNextStart(refusal: Refusal): void {
    this.refusals.push(refusal);
  }

  /** The next start creates an execution that is Running, then Failed with `reason` ~300 ms later, with no worker. */
  failNextExecutionBeforeDialBack(reason: string): void {
    this.failures.push(reason);
  }

  /** An execution nobody started through this fake's API (a previous orchestrator's orphan); no process. */
  addExecution(status: FakeExecutionStatus = "Running"): FakeJobExecution {
    const execution = this.newExecution(undefined);
    execution.status = status;
    return execution;
  }

  /** The credential, rewrite policy and retry options that point the real SDK at this fake. */
  clientOverrides(): AzureClientOverrides {
    const port = this.port;
    const rewrite: PipelinePolicy = {
      name: "tetherFakeArmRewrite",
      // perRetry runs after the bearer policy checked for https: the technique Azure's test recorder uses.
      sendRequest: (request, next) => {
        const url = new URL(request.url);
        url.protocol = "http:";
        url.host = `127.0.0.1:${port}`;
        request.url = url.toString();
        request.allowInsecureConnection = true;
        return next(request);
      },
    };
    const credential: TokenCredential = {
      getToken: async (scopes) => {
        this.tokenScopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
        return { token: "fake-arm-token", expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    return { credential, additionalPolicies: [{ policy: rewrite, position: "perRetry" }], retryOptions: { maxRetries: 0 } };
  }

  /** Resolves once `predicate` holds, re-checked on every request and execution change. */
  waitFor(predicate: () => boolean, timeoutMs = 15_000, what = "the fake ARM state"): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; requests: ${this.requests.map((r) => `${r.method} ${r.path} ${r.status}`).join(", ")}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off("change", check);
      };
      this.on("change", check);
    });
  }

  /** Stops every execution (and its processes), then the server. */
  async close(): Promise<void> {
    await Promise.all([...this.executions.values()].map((execution) => execution.stop()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await rm(this.root, { recursive: true, force: true });
  }

  // ---- HTTP ----------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const record: ArmRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      apiVersion: url.searchParams.get("api-version"),
      authorization: req.headers.authorization,
      body,
      status: 0,
    };
    const answer = (status: number, payload?: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      this.requests.push(record);
      res.writeHead(status, { ...(payload === undefined ? {} : { "content-type": "application/json" }), "x-ms-request-id": randomUUID(), ...headers });
      res.end(payload === undefined ? undefined : JSON.stringify(payload));
      this.emit("change");
    };
    try {
      await this.route(record, answer);
    } catch (error) {
      answer(500, armError("InternalServerError", (error as Error).message));
    }
  }

  private async route(request: ArmRequest, answer: (status: number, payload?: unknown, headers?: Record<string, string>) => void): Promise<void> {
    if (!request.authorization?.startsWith("Bearer ")) {
      return answer(401, armError("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."));
    }
    if (request.apiVersion === null) {
      return answer(400, armError("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."));
    }
    if (!API_VERSION_PATTERN.test(request.apiVersion)) {
      return answer(400, armError("InvalidApiVersionParameter", `The api-version '${request.apiVersion}' is invalid.`));
    }
    const operation = /^\/subscriptions\/[^/]+\/providers\/Microsoft\.App\/locations\/[^/]+\/containerappsjobOperationResults\/([^/]+)$/i.exec(request.path);
    if (operation && request.method === "GET") return this.pollOperation(operation[1] ?? "", answer);
    if (!request.path.toLowerCase().startsWith(this.jobPath.toLowerCase())) {
      return answer(404, armError("ResourceNotFound", `The Resource '${request.path}' was not found.`));
    }
    const rest = request.path.slice(this.jobPath.length);
    let match: RegExpExecArray | null;
    if (request.method === "POST" && /^\/start$/i.test(rest)) return this.start(request.body, answer);
    if (request.method === "GET" && /^\/executions$/i.test(rest)) return answer(200, { value: [...this.executions.values()].map((e) => e.resource()) });
    if ((match = /^\/executions\/([^/]+)(\/stop)?$/i.exec(rest))) {
      const execution = this.executions.get(match[1] ?? "");
      if (!execution) return answer(404, armError("ResourceNotFound", `Job execution '${match[1] ?? ""}' was not found.`));
      if (request.method === "GET" && !match[2]) return answer(200, execution.resource());
      if (request.method === "POST" && match[2]) return this.stop(execution, answer);
    }
    return answer(405, armError("MethodNotAllowed", `${request.method} ${request.path} is not supported by this fake.`));
  }

  private async start(body: unknown, answer: (status: number, payload?: unknown, headers?: Record<string, string>) => void): Promise<void> {
    const refusal = this.refusals.shift();
    if (refusal) {
      return answer(refusal.status, armError(refusal.code, refusal.message), refusal.retryAfterS === undefined ? {} : { "retry-after": String(refusal.retryAfterS) });
    }
    const problem = templateProblem(body);
    if (problem) return answer(400, armError("InvalidRequestContent", problem));
    const execution = this.newExecution(body as FakeTemplate);
    const reason = this.failures.shift();
    if (reason !== undefined) {
      execution.failAfter(FAIL_BEFORE_DIAL_BACK_MS, reason);
    } else {
      const command = this.options.workerCommand ?? [process.execPath, join(repoRoot, "worker/dist/main.js")];
      await execution.spawnWorker(command, workspaceFor(this.root, execution.name), process.env.TETHER_PYTHON ? { TETHER_PYTHON: process.env.TETHER_PYTHON } : {});
    }
    // Like ARM: accepted, finished later; the operation's final GET carries {name, id}.
    const result = { name: execution.name, id: execution.id };
    return answer(202, undefined, this.operation(() => ({ status: 200, body: result })));
  }

  private async stop(execution: FakeJobExecution, answer: (status: number, payload?: unknown, headers?: Record<string, string>) => void): Promise<void> {
    if (execution.ended) return answer(200);
    const stopped = execution.stop();
    let done = false;
    void stopped.then(() => (done = true));
    return answer(202, undefined, this.operation(() => (done ? { status: 200 } : undefined)));
  }

  /** A long-running operation: `result` undefined means still running (202). The first poll is always 202. */
  private operation(result: () => { status: number; body?: unknown } | undefined): Record<string, string> {
    const id = randomUUID();
    this.operations.set(id, { polls: 0, result });
    const path = `/subscriptions/${this.options.subscriptionId}/providers/Microsoft.App/locations/westeurope/containerappsjobOperationResults/${id}`;
    return { location: `${this.publicEndpoint}${path}?api-version=2025-01-01` };
  }

  private pollOperation(id: string, answer: (status: number, payload?: unknown, headers?: Record<string, string>) => void): void {
    const operation = this.operations.get(id);
    if (!operation) return answer(404, armError("OperationNotFound", `Operation '${id}' was not found.`));
    operation.polls += 1;
    const result = operation.polls > 1 ? operation.result() : undefined;
    if (!result) return answer(202, undefined, this.operationHeaders(id));
    this.operations.delete(id);
    return answer(result.status, result.body);
  }

  private operationHeaders(id: string): Record<string, string> {
    const path = `/subscriptions/${this.options.subscriptionId}/providers/Microsoft.App/locations/westeurope/containerappsjobOperationResults/${id}`;
    return { location: `${this.publicEndpoint}${path}?api-version=2025-01-01` };
  }

  private newExecution(template: FakeTemplate | undefined): FakeJobExecution {
    const name = `${this.options.jobName}-${randomBytes(8).toString("hex").slice(0, 7)}`;
    const execution = new FakeJobExecution(name, `${this.jobPath}/executions/${name}`, template, () => this.emit("change"));
    this.executions.set(name, execution);
    return execution;
  }
}

function armError(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** What ACA would reject in a start body: it must be the bare template. */
function templateProblem(body: unknown): string | undefined {
  const template = body as Partial<FakeTemplate> | undefined;
  if (!template || typeof template !== "object" || !Array.isArray(template.containers) || template.containers.length === 0) {
    return "The request body must be a job execution template with at least one container.";
  }
  if ("template" in template) return "The start body is the bare template, not {template: ...}.";
  for (const container of template.containers) {
    if (typeof container.name !== "string" || typeof container.image !== "string") return "Each container needs a name and an image.";
    for (const variable of container.env ?? []) {
      if (typeof variable.name !== "string" || (variable.value === undefined && variable.secretRef === undefined)) return `Env var ${JSON.stringify(variable)} needs a name and a value or secretRef.`;
    }
  }
  return undefined;
}
