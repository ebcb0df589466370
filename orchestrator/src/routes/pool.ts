import type { FastifyInstance } from "fastify";
import type { PoolStatus } from "@tether/shared";
import type { AppContext } from "../app-context.js";

/** `GET /v1/pool`: the warm pool's target size and how many workers are ready or starting. */
export function registerPoolRoutes(scope: FastifyInstance, context: AppContext): void {
  scope.get("/v1/pool", async (): Promise<PoolStatus> => context.pool?.status() ?? { target: 0, ready: 0, starting: 0 });
}
