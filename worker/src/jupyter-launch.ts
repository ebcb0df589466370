import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";

// Node built-ins only, no @tether/shared (~180 ms to load): main.ts spawns
// Jupyter Server with this before loading the rest of the worker, so Python
// boots while Node loads (the server, then its kernel, is the critical path of
// a start: docs/internals.md, bench/README.md "resume").

/** Environment variable naming the Jupyter Server instance a process belongs to (kernels inherit it). */
export const JUPYTER_INSTANCE_VARIABLE = "TETHER_JUPYTER_INSTANCE";
const STDERR_TAIL_LINES = 30;

export interface JupyterSpawnOptions {
  python: string;
  /** Absolute, realpath'd workspace: Jupyter's root dir, so kernels start there. */
  workspace: string;
  /** Environment for the server and, through it, the kernel: must not hold the join token. */
  env: NodeJS.ProcessEnv;
}

/** A Jupyter Server process just spawned: not known to answer yet (jupyter-server.ts waits for that). */
export interface SpawnedJupyter {
  readonly child: ChildProcess;
  readonly port: number;
  readonly token: string;
  readonly instance: string;
  /** Settles when the process ended (or could not be spawned); then `exit` is set. */
  readonly ended: Promise<void>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Why the process could not be spawned, if so. */
  spawnError: Error | undefined;
  /** The last stderr lines, for failure reasons. */
  stderrTail(): string;
  /** Receives each stderr line from now on (earlier ones are only in the tail). */
  onLine: ((line: string) => void) | undefined;
}

/** The environment Jupyter Server and, through it, the kernel get: the join token removed, since user code must never read it. */
export function kernelEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.TETHER_JOIN_TOKEN;
  return copy;
}

/**
 * Runs jupyter_server after turning TCP_NODELAY on for kernel websockets.
 * Tornado leaves Nagle's algorithm on, so the server holds back each small
 * message after the first of an execution until the worker's delayed ACK
 * (~40 ms on Linux): a trivial execute took ~47 ms, ~4 ms with this. No
 * config flag does it in jupyter_server 1.x; if the handler class moved
 * (2.x), the server starts unpatched.
 *
 * It also adds `tether_exit: {pid, returncode}` to the `restarting`/`dead`
 * status the server sends when a kernel dies: only the server, the kernel's
 * parent, knows how it ended (SIGKILL from a memory limit, SIGXCPU from the
 * CPU limit), and the status message is ordered with the kernel's output,
 * which a log line on stderr would not be. Unpatched, deaths say less.
 *
 * And it keeps each kernel websocket's subprotocol as negotiated at open:
 * jupyter_server 1.x reads it from the tornado connection, which is gone
 * once the socket is closing, and then parses a message still arriving in the
 * v1 binary format as the legacy one, whose first 4 bytes it takes for the
 * number of buffers: a v1 header `06 00 00 00 ...` built a struct format of
 * 100 million `I`s, 3.2 GB (seen under load, when the worker replaces a
 * silent kernel socket after a restart). Unpatched, such a message costs that.
 *
 * And it finds and reads the `python3` kernelspec without importing
 * IPython or ipykernel into the server: jupyter_client imports IPython to
 * name ~/.ipython/kernels (computed here the same way, IPYTHONDIR or the
 * default) and ipykernel.kernelspec (with debugpy) to compare a path, on
 * the first kernel start: ~0.5 s between POST /api/kernels and the kernel's
 * spawn, on the critical path of every cold start and resume. When the spec
 * is ipykernel's bundled one (no kernelspec on disk), nothing changes.
 */
/**
 * What a kernel runs instead of `python -m ipykernel_launcher` (the bootstrap
 * swaps it into an ipykernel kernelspec's argv; any other spec runs as is):
 * - without debugpy: Tether never sends debug requests, and importing it was
 *   ~0.3 s of the ~0.8 s a kernel takes to start (on every cold start and
 *   resume). `kernel_info` then says `debugger: false`; user code can still
 *   import debugpy (only the kernel's own import is refused).
 * - with the workspace off sys.path while the kernel imports itself: files
 *   are restored into the workspace while the kernel starts (and exist at any
 *   restart), and one named like a module the kernel needs (types.py,
 *   code.py, json.py) would break the start. User code then finds the
 *   workspace first on sys.path, as under `-m` (`exec_lines` run before the
 *   kernel answers).
 * - with IPython's history in memory (`%history` still shows the session's
 *   own cells): the default, one SQLite file under HOME, is shared by every
 *   kernel of a machine whose workers share HOME (TETHER_SANDBOX=off), where
 *   one session read another's code and, under load, a locked file put
 *   IPython's "database is locked" warning into the output of executions.
 *   Nothing would keep it anyway: HOME is scratch, not in snapshots.
 */
export const KERNEL_BOOT = [
  "import sys",
  "if sys.path and sys.path[0] == '':",
  "    del sys.path[0]",
  "sys.modules['debugpy'] = None",
  "from ipykernel import kernelapp",
  "del sys.modules['debugpy']",
  "sys.argv.append('--HistoryManager.hist_file=:memory:')",
  "kernelapp.launch_new_instance(exec_lines=[\"__import__('sys').path.insert(0, __import__('os').getcwd())\"])",
].join("\n");

export const JUPYTER_BOOTSTRAP = [
  "import sys",
  // `-c` in the workspace put it first on sys.path: a user's json.py would be imported by the server itself.
  "if sys.path and sys.path[0] == '':",
  "    del sys.path[0]",
  "def _nodelay(path, name):",
  "    try:",
  "        module = __import__(path, fromlist=[name])",
  "        cls = getattr(module, name)",
  "        original = cls.open",
  "        def open(self, *args, **kwargs):",
  "            self.set_nodelay(True)",
  "            return original(self, *args, **kwargs)",
  "        cls.open = open",
  "    except Exception:",
  "        pass",
  "_nodelay('jupyter_server.services.kernels.handlers', 'ZMQChannelsHandler')",
  "_nodelay('jupyter_server.services.kernels.websocket', 'KernelWebsocketHandler')",
  // The token comes in the environment, not argv (where every user of the machine reads it with `ps`),
  // and leaves it before any kernel is spawned: kernels inherit this process's os.environ.
  "import os",
  "_token = os.environ.pop('TETHER_JUPYTER_TOKEN', '')",
  "if not _token: sys.exit('TETHER_JUPYTER_TOKEN is required: an empty token would turn authentication off')",
  "sys.argv.append('--ServerApp.token=' + _token)",
  "def _exit_status(path, name):",
  "    try:",
  "        module = __import__(path, fromlist=[name])",
  "        cls = getattr(module, name)",
  "        original = cls._send_status_message",
  "        def send(self, status):",
  "            ended = None",
  "            if status in ('restarting', 'dead'):",
  "                try:",
  "                    process = self.kernel_manager.get_kernel(self.kernel_id).provisioner.process",
  "                    ended = {'pid': process.pid, 'returncode': process.poll()}",
  "                except Exception:",
  "                    ended = None",
  "            if ended is None:",
  "                return original(self, status)",
  "            session_msg = self.session.msg",
  "            def msg(msg_type, content=None, *args, **kwargs):",
  "                if msg_type == 'status' and isinstance(content, dict):",
  "                    content = dict(content, tether_exit=ended)",
  "                return session_msg(msg_type, content, *args, **kwargs)",
  "            self.session.msg = msg",
  "            try:",
  "                return original(self, status)",
  "            finally:",
  "                del self.session.msg",
  "        cls._send_status_message = send",
  "    except Exception:",
  "        pass",
  "_exit_status('jupyter_server.services.kernels.handlers', 'ZMQChannelsHandler')",
  "def _stable_subprotocol(path, name):",
  "    try:",
  "        module = __import__(path, fromlist=[name])",
  "        cls = getattr(module, name)",
  "        original = cls.open",
  "        def open(self, *args, **kwargs):",
  "            try:",
  "                self._tether_subprotocol = self.selected_subprotocol",
  "            except Exception:",
  "                self._tether_subprotocol = None",
  "            return original(self, *args, **kwargs)",
  "        cls.open = open",
  "        cls.subprotocol = property(lambda self: getattr(self, '_tether_subprotocol', None))",
  "    except Exception:",
  "        pass",
  "_stable_subprotocol('jupyter_server.services.kernels.handlers', 'ZMQChannelsHandler')",
  "def _spec_from_disk():",
  "    try:",
  "        import importlib.util",
  "        from jupyter_client import kernelspec",
  "        package = importlib.util.find_spec('ipykernel')",
  "        bundled = os.path.join(list(package.submodule_search_locations)[0], 'resources') if package else None",
  "        original = kernelspec.KernelSpecManager._get_kernel_spec_by_name",
  "        def by_name(self, kernel_name, resource_dir):",
  "            if kernel_name != kernelspec.NATIVE_KERNEL_NAME or resource_dir == bundled:",
  "                return original(self, kernel_name, resource_dir)",
  "            spec = self.kernel_spec_class.from_resource_dir(resource_dir)",
  "            if not kernelspec.KPF.instance(parent=self.parent).is_provisioner_available(spec):",
  "                raise kernelspec.NoSuchKernel(kernel_name)",
  "            return spec",
  "        kernelspec.KernelSpecManager._get_kernel_spec_by_name = by_name",
  "        def kernel_dirs(self):",
  "            ipython = os.environ.get('IPYTHONDIR') or os.path.join(os.path.expanduser('~'), '.ipython')",
  "            return kernelspec.jupyter_path('kernels') + [os.path.join(ipython, 'kernels')]",
  "        kernelspec.KernelSpecManager._kernel_dirs_default = kernel_dirs",
  "    except Exception:",
  "        pass",
  "_spec_from_disk()",
  `_KERNEL_BOOT = ${JSON.stringify(KERNEL_BOOT)}`,
  "def _lean_kernel():",
  "    try:",
  "        from jupyter_client import kernelspec",
  "        original = kernelspec.KernelSpecManager.get_kernel_spec",
  "        def get_kernel_spec(self, kernel_name):",
  "            spec = original(self, kernel_name)",
  "            argv = list(spec.argv)",
  "            if len(argv) == 5 and argv[1:4] == ['-m', 'ipykernel_launcher', '-f']:",
  "                spec.argv = [argv[0], '-c', _KERNEL_BOOT, '-f', argv[4]]",
  "            return spec",
  "        kernelspec.KernelSpecManager.get_kernel_spec = get_kernel_spec",
  "    except Exception:",
  "        pass",
  "_lean_kernel()",
  "from jupyter_server.serverapp import main",
  "sys.argv[0] = 'jupyter-server'",
  "sys.exit(main())",
].join("\n");

/** Interpreter arguments that start Jupyter Server (the token travels in TETHER_JUPYTER_TOKEN); exported for tests and the benchmark notes. */
export function jupyterServerArgs(port: number, workspace: string, isRoot: boolean): string[] {
  return [
    "-c",
    JUPYTER_BOOTSTRAP,
    "--ServerApp.ip=127.0.0.1",
    `--ServerApp.port=${port}`,
    "--ServerApp.port_retries=0",
    `--ServerApp.root_dir=${workspace}`,
    "--ServerApp.open_browser=False",
    // Kernels only: a terminal is a shell nobody asked for.
    "--ServerApp.terminals_enabled=False",
    // 0 disables the rate limits: output is never dropped, the worker applies backpressure instead.
    "--ServerApp.iopub_msg_rate_limit=0",
    "--ServerApp.iopub_data_rate_limit=0",
    // The restarter polls the kernel this often (s): a dead kernel is noticed in ~0.5 s, not 3 s.
    "--KernelRestarter.time_to_dead=0.5",
    // A kernel that ignores shutdown_request (stuck in C code, SIGINT ignored) is killed after 1 s, not 5 s.
    "--KernelManager.shutdown_wait_time=1.0",
    ...(isRoot ? ["--ServerApp.allow_root=True"] : []),
  ];
}

/** Spawns Jupyter Server on `port`, with its stderr and exit followed from the first moment. */
export function spawnJupyter(options: JupyterSpawnOptions, port: number): SpawnedJupyter {
  const token = randomBytes(24).toString("hex");
  const instance = randomBytes(8).toString("hex");
  const isRoot = process.getuid?.() === 0;
  const child = spawn(options.python, jupyterServerArgs(port, options.workspace, isRoot), {
    cwd: options.workspace,
    env: { ...options.env, TETHER_JUPYTER_TOKEN: token, [JUPYTER_INSTANCE_VARIABLE]: instance },
    stdio: ["ignore", "ignore", "pipe"],
    // Its own process group, so stop() reaches any helper it forks (kernels start their own session anyway).
    detached: true,
  });
  const tail: string[] = [];
  let partial = "";
  const spawned: SpawnedJupyter = {
    child,
    port,
    token,
    instance,
    exit: undefined,
    spawnError: undefined,
    onLine: undefined,
    ended: new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        spawned.exit = { code, signal };
        resolve();
      });
      child.once("error", (error) => {
        spawned.spawnError = error;
        spawned.exit = { code: null, signal: null };
        resolve();
      });
    }),
    stderrTail: () => [...tail, partial].join("\n").trim(),
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      tail.push(line);
      if (tail.length > STDERR_TAIL_LINES) tail.shift();
      spawned.onLine?.(line);
    }
  });
  return spawned;
}

/** A port that was free a moment ago; the server may still lose a race for it (then we retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

