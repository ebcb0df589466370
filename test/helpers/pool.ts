import type { PoolStatus } from "@tether/shared";
import { expectStatus, type RestClient } from "./rest.js";

/** The pool has no event stream: polls GET /v1/pool until `predicate` holds. */
export async function waitForPool(client: RestClient, predicate: (pool: PoolStatus) => boolean, timeoutMs = 45_000): Promise<PoolStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pool = expectStatus<PoolStatus>(await client.request("GET", "/v1/pool"), 200, "GET /v1/pool");
    if (predicate(pool)) return pool;
    if (Date.now() > deadline) throw new Error(`The pool never reached the expected state; last: ${JSON.stringify(pool)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
