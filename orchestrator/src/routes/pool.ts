import { ErrorResponse, PoolStatus } from "@tether/shared";
import type { AppContext, RouteScope } from "./route-context.js";

/** `GET /v1/pool`: the warm pool's target size and how many workers are ready or starting. */
export function registerPoolRoutes(scope: RouteScope, context: AppContext): void {
  scope.get("/v1/pool", { schema: { response: { 200: PoolStatus, "4xx": ErrorResponse } } }, async () => context.pool?.status() ?? { target: 0, ready: 0, starting: 0 });
}
