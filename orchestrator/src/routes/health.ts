import type { FastifyInstance } from "fastify";

/** `GET /healthz`: liveness, no auth. */
export function registerHealthRoutes(app: FastifyInstance): void {
  app.get("/healthz", async () => ({ status: "ok" }));
}
