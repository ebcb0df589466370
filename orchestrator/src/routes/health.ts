import { Type } from "@sinclair/typebox";
import type { Readiness } from "../metrics/readiness.js";
import type { RouteScope } from "./route-context.js";

const Check = Type.Object({ ok: Type.Boolean(), detail: Type.String() });
const ReadyzResponse = Type.Object({
  status: Type.Union([Type.Literal("ready"), Type.Literal("not_ready")]),
  /** `<check>: <detail>` for each failing check. */
  reasons: Type.Array(Type.String()),
  checks: Type.Record(Type.String(), Check),
});

/**
 * `GET /healthz`: liveness (the process answers), no auth. `GET /readyz`:
 * whether it can serve (200, or 503 with the reasons), no auth: probes and
 * load balancers call it.
 */
export function registerHealthRoutes(app: RouteScope, readiness: Readiness, replicaId?: string): void {
  // In a cluster /healthz also names the replica that answered (operators, tests).
  const Health = Type.Object({ status: Type.Literal("ok"), replicaId: Type.Optional(Type.String()) });
  app.get("/healthz", { schema: { response: { 200: Health } } }, async () => ({ status: "ok" as const, ...(replicaId ? { replicaId } : {}) }));
  app.get("/readyz", { schema: { response: { 200: ReadyzResponse, 503: ReadyzResponse } } }, async (_request, reply) => {
    const report = await readiness.report();
    const reasons = Object.entries(report.checks)
      .filter(([, check]) => !check.ok)
      .map(([name, check]) => `${name}: ${check.detail}`);
    return reply
      .code(report.ready ? 200 : 503)
      .header("cache-control", "no-store")
      .send({ status: report.ready ? ("ready" as const) : ("not_ready" as const), reasons, checks: report.checks });
  });
}
