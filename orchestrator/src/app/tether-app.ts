import type { IncomingMessage, ServerResponse } from "node:http";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, RawServerDefault } from "fastify";
import type { Logger } from "pino";

/** The orchestrator's fastify app: our pino logger, and route schemas that type their handlers (TypeBox type provider). */
export type TetherApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger, TypeBoxTypeProvider>;
