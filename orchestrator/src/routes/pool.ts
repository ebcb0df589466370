import { ErrorResponse, PoolStatus } from "@tether/shared";
import type { AppContext, RouteScope } from "./route-context.js";

/**
 * `GET /v1/pool`: this replica's warm pool (target size, workers ready or
 * starting) and, in a cluster, the idle workers of every replica, which any
 * replica's creates may use.
 */
export function registerPoolRoutes(scope: RouteScope, context: AppContext): void {
  scope.get("/v1/pool", { schema: { response: { 200: PoolStatus, "4xx": ErrorResponse, "5xx": ErrorResponse } } }, async () => {
    const local = context.pool?.status() ?? { target: 0, ready: 0, starting: 0 };
    return context.cluster ? { ...local, cluster: await context.cluster.peerPool.status() } : local;
  });
}
