import type { AppContext } from "../../routes/route-context.js";
import { startExecution } from "../../routes/route-context.js";
import type { Session } from "../../sessions/session.js";
import type { SlotHooks } from "./session-slot.js";

/**
 * How adapters create Tether sessions and run code in them, the way REST
 * does: in a cluster a new session is admitted against the cluster-wide
 * quota and start limit and owned in the store before anyone hears its id
 * (so any replica routes to it and a replica taking over adopts it), and an
 * execution is queued only once the store has it.
 */
export function adapterSessionHooks(context: AppContext): SlotHooks {
  return {
    async create(tenant, metadata): Promise<Session> {
      await context.cluster?.admitCreate(tenant);
      const session = context.registry.create(tenant, metadata);
      if (context.cluster) {
        await context.cluster.own(session).catch(async (error: unknown) => {
          await session.stop("its record could not be stored");
          throw error;
        });
      }
      return session;
    },
    submit: (session, request, sink) => startExecution(context, session, request, sink),
  };
}
