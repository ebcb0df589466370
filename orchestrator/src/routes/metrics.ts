import { timingSafeEqual, createHash } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { ErrorCodes, tetherError } from "../errors.js";
import type { OrchestratorMetrics } from "../metrics/orchestrator-metrics.js";
import type { RouteScope } from "./route-context.js";

export interface MetricsRouteOptions {
  metrics: OrchestratorMetrics;
  /** TETHER_METRICS_TOKEN; undefined: loopback clients only. */
  token: string | undefined;
}

/**
 * `GET /metrics`: Prometheus text format. With TETHER_METRICS_TOKEN it needs
 * `Authorization: Bearer <token>`; without, it answers only clients on
 * loopback that did not come through a proxy (a proxy on the same host
 * would otherwise make every client look local).
 */
export function registerMetricsRoute(scope: RouteScope, options: MetricsRouteOptions): void {
  const expected = options.token === undefined ? undefined : digest(options.token);
  scope.get("/metrics", async (request, reply) => {
    if (expected) checkBearer(request, expected);
    else if (!isDirectLoopback(request)) {
      throw tetherError(ErrorCodes.METRICS_FORBIDDEN, "/metrics answers only clients on this host's loopback when TETHER_METRICS_TOKEN is unset.", {
        hint: "Set TETHER_METRICS_TOKEN on the orchestrator and scrape with Authorization: Bearer <token>.",
      });
    }
    const { contentType, body } = await options.metrics.scrape();
    return reply.header("content-type", contentType).header("cache-control", "no-store").send(body);
  });
}

function checkBearer(request: FastifyRequest, expected: Buffer): void {
  const header = request.headers.authorization;
  if (!header) {
    throw tetherError(ErrorCodes.AUTH_MISSING, "/metrics needs Authorization: Bearer <TETHER_METRICS_TOKEN>.", { hint: "Configure the scraper's bearer token (Prometheus: authorization.credentials)." });
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // Digests have one length: the comparison takes the same time whatever was sent.
  if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) {
    throw tetherError(ErrorCodes.AUTH_INVALID, "The metrics token is not TETHER_METRICS_TOKEN.", { hint: "Send Authorization: Bearer <TETHER_METRICS_TOKEN> (API keys do not open /metrics)." });
  }
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

function isDirectLoopback(request: FastifyRequest): boolean {
  if (request.headers["x-forwarded-for"] !== undefined || request.headers.forwarded !== undefined) return false;
  return LOOPBACK.has(request.socket.remoteAddress ?? "");
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
