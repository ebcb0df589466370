import type { Static, TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";

/**
 * A type guard for one schema, for bodies that are not `type`-keyed messages
 * (REST answers read by the client SDK). Compiled on first use, so a guard
 * that is never called costs nothing at load time (the browser bundle).
 */
export function schemaGuard<S extends TSchema>(schema: S): (value: unknown) => value is Static<S> {
  let check: TypeCheck<S> | undefined;
  return (value: unknown): value is Static<S> => {
    check ??= TypeCompiler.Compile(schema);
    return check.Check(value);
  };
}
