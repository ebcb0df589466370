import { Type } from "@sinclair/typebox";
import type { RouteScope } from "./route-context.js";

/** `GET /healthz`: liveness, no auth. In a cluster it names the replica that answered (operators, tests). */
export function registerHealthRoutes(app: RouteScope, replicaId?: string): void {
  const Health = Type.Object({ status: Type.Literal("ok"), replicaId: Type.Optional(Type.String()) });
  app.get("/healthz", { schema: { response: { 200: Health } } }, async () => ({ status: "ok" as const, ...(replicaId ? { replicaId } : {}) }));
}
