import { Type } from "@sinclair/typebox";
import type { RouteScope } from "./route-context.js";

/** `GET /healthz`: liveness, no auth. */
export function registerHealthRoutes(app: RouteScope): void {
  app.get("/healthz", { schema: { response: { 200: Type.Object({ status: Type.Literal("ok") }) } } }, async () => ({ status: "ok" as const }));
}
