#!/usr/bin/env node
// Statically, only Node built-ins and early-start's: Jupyter Server is spawned
// before the rest of the worker (pino, @tether/shared, the agent) loads.
import type { Logger } from "pino";
import type { ExitCode } from "./errors.js";
import { abandonEarly, startEarly, type EarlyStart } from "./early-start.js";

/** Entry point: `--probe-python [--python PATH]`, or run the worker from TETHER_* env (docs/internals.md). */
async function main(argv: string[]): Promise<ExitCode> {
  if (argv.includes("--probe-python")) {
    const { probePython } = await import("./python-probe.js");
    const { ExitCodes } = await import("./errors.js");
    const index = argv.indexOf("--python");
    const python = index >= 0 ? argv[index + 1] : process.env.TETHER_PYTHON?.trim() || undefined;
    const result = await probePython({ python, pathEnv: process.env.PATH });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.ok ? ExitCodes.ok : ExitCodes.noPython;
  }

  // Everything the worker, Jupyter and the kernel create is private to this user (files 0600, directories 0700).
  process.umask(0o077);
  const early = startEarly(process.env, process.cwd());
  return run(early);
}

async function run(early: EarlyStart): Promise<ExitCode> {
  const [{ pino, destination }, { ErrorCodes, TetherError }, { realpath }, configModule, jupyter, { ExitCodes }, { probePython }, { readFirstLine }] = await Promise.all([
    import("pino"),
    import("@tether/shared"),
    import("node:fs/promises"),
    import("./config.js"),
    import("./jupyter-server.js"),
    import("./errors.js"),
    import("./python-probe.js"),
    import("./stdin-token.js"),
  ]);
  const { joinTokenOnStdin, loadWorkerConfig, removeJoinTokenFile } = configModule;
  const { kernelEnvironment, startJupyterServer } = jupyter;
  // At info until the config is read: TETHER_LOG_LEVEL is validated there, and an invalid one must not crash pino first.
  const logSink = destination({ fd: 2, sync: true });
  // The log's reader may go away before we do (an orchestrator replica killed while its
  // worker carries on for the next one): a broken pipe must cost the log, not the worker.
  logSink.on("error", () => undefined);
  process.stderr.on("error", () => undefined);
  let logger: Logger = pino({ level: "info", base: { component: "worker" } }, logSink);
  let config;
  try {
    // The docker launcher hands the token over on stdin (never env or argv): read it before anything else starts.
    const stdinToken = joinTokenOnStdin(process.env) ? await readFirstLine(process.stdin) : undefined;
    const tokenFile = early.tokenFile;
    config = loadWorkerConfig(process.env, process.cwd(), { stdinToken, ...(tokenFile ? { readFile: () => tokenFile.content } : {}) });
  } catch (error) {
    logger.error({ err: error }, "invalid worker configuration");
    await abandonEarly(early);
    return ExitCodes.failure;
  }
  logger.level = config.logLevel;
  logger = logger.child({ launchId: config.launchId });
  if (early.tokenFile) {
    logger.debug({ file: early.tokenFile.path, outcome: early.tokenFile.unlinked }, "read the join token file before starting Jupyter");
  } else if (config.joinTokenFile) {
    try {
      logger.debug({ file: config.joinTokenFile, outcome: removeJoinTokenFile(config.joinTokenFile) }, "read the join token file");
    } catch (error) {
      logger.warn({ err: error, file: config.joinTokenFile }, "could not remove the join token file");
    }
  }
  routeConsoleToLogger(logger);

  let python = config.python;
  if (!python) {
    const probe = await probePython({ pathEnv: process.env.PATH });
    if (!probe.ok) {
      logger.error({ code: ErrorCodes.RUNTIME_PYTHON_NOT_FOUND, tried: probe.tried, hint: probe.hint }, "no usable Python runtime");
      return ExitCodes.noPython;
    }
    python = probe.python;
  }

  // Cold start: Jupyter Server was spawned before this module loaded (early-start.ts) when it
  // could be, else now; the agent and @jupyterlab/services load while Python boots.
  let jupyterServer;
  const spawned = early.jupyter;
  if (spawned && spawned.python === python) {
    const options = { python, workspace: spawned.workspace, env: kernelEnvironment(process.env), logger };
    jupyterServer = spawned.spawned.then(
      (first) => startJupyterServer(options, first),
      () => startJupyterServer(options),
    );
    jupyterServer.catch(() => undefined); // the agent reports it as worker_failed
  } else {
    await abandonEarly(early);
    try {
      const workspace = await realpath(config.workspace);
      jupyterServer = startJupyterServer({ python, workspace, env: kernelEnvironment(process.env), logger });
      jupyterServer.catch(() => undefined); // the agent reports it as worker_failed
    } catch {
      // A missing workspace is reported by the agent, which opens it next.
    }
  }
  const { WorkerAgent } = await import("./agent.js");
  const agent = new WorkerAgent({ config, python, logger, ...(jupyterServer ? { jupyterServer } : {}) });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => void agent.stop(`received ${signal}`, ExitCodes.ok));
  }
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled rejection"));
  try {
    return await agent.run();
  } catch (error) {
    logger.error({ err: error, code: error instanceof TetherError ? error.code : ErrorCodes.INTERNAL }, "worker failed");
    await agent.stop("startup failed", ExitCodes.failure);
    return ExitCodes.failure;
  }
}

/**
 * @jupyterlab/services reports through console.* (debug on every websocket
 * open, warn on reconnects); stdout is not ours to print on, so those go to
 * the log instead.
 */
function routeConsoleToLogger(logger: Logger): void {
  const log = logger.child({ source: "jupyterlab-services" });
  const format = (args: unknown[]): string => args.map((arg) => (typeof arg === "string" ? arg : arg instanceof Error ? arg.message : JSON.stringify(arg))).join(" ");
  console.log = (...args: unknown[]) => log.debug(format(args));
  console.debug = (...args: unknown[]) => log.debug(format(args));
  console.info = (...args: unknown[]) => log.debug(format(args));
  console.warn = (...args: unknown[]) => log.warn(format(args));
  console.error = (...args: unknown[]) => log.error(format(args));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`tether worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
