import { readFile } from "node:fs/promises";
import path from "node:path";
import { Type } from "@sinclair/typebox";
import { errnoCode } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";
import type { RouteScope } from "./route-context.js";

/** The files the playground build writes (client/scripts/build-browser.mjs), by extension. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};
/** One flat directory of built files: a plain name, never a path. */
const FILE_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)+$/;

/**
 * `GET /playground/`: the browser playground (built on the SDK) as static
 * files from TETHER_PLAYGROUND_DIR. No credential: the page asks for one and
 * calls the API like any browser client.
 */
export function registerPlaygroundRoutes(scope: RouteScope, dir: string | undefined): void {
  scope.get("/playground", async (_request, reply) => reply.redirect("/playground/"));
  scope.get("/playground/*", { schema: { params: Type.Object({ "*": Type.String() }) } }, async (request, reply) => {
    const name = request.params["*"] || "index.html";
    const contentType = CONTENT_TYPES[path.extname(name)];
    if (!FILE_NAME.test(name) || contentType === undefined) throw notFound(`No playground file '${name}'.`);
    if (dir === undefined) throw notFound("The playground is turned off (TETHER_PLAYGROUND_DIR is empty).");
    let body: Buffer;
    try {
      body = await readFile(path.join(dir, name));
    } catch (error) {
      if (errnoCode(error) === "ENOENT" || errnoCode(error) === "EISDIR") throw notFound(`No playground file '${name}' in ${dir}.`, "Build it with `npm run build` (client/dist/playground), or point TETHER_PLAYGROUND_DIR at a built copy.");
      throw error;
    }
    return reply
      .header("content-type", contentType)
      .header("cache-control", "no-cache")
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      // The page holds a credential: no other site may frame it (a header, not a CSP, so output iframes do not inherit it).
      .header("x-frame-options", "DENY")
      .send(body);
  });
}

function notFound(message: string, hint = "Open /playground/ (the page loads its own files)."): Error {
  return tetherError(ErrorCodes.ROUTE_NOT_FOUND, message, { hint });
}
