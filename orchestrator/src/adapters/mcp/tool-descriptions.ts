/** What the tool texts state as numbers. */
export interface ToolLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  maxOutputBytes: number;
  maxReadBytes: number;
}

/**
 * Texts written for the model that calls the tools: what persists between
 * calls, where files are, how plots come back, what the limits are and how
 * input() works. The MCP client shows them to the model verbatim.
 */
export function toolTexts(limits: ToolLimits): {
  instructions: string;
  runCode: string;
  listFiles: string;
  readFile: string;
  writeFile: string;
  restartKernel: string;
} {
  const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;
  const files =
    "Files live in the session's workspace, which is the working directory of the code: use relative paths like 'data.csv'. " +
    "Paths under /mnt/data/ name the same files in the file tools (and in the code too where the server mounts the workspace there; relative paths always work).";
  return {
    instructions:
      "A Python (Jupyter/IPython) sandbox. run_code executes code in one persistent kernel: variables, imports and files stay between calls for this connection. " +
      `${files} matplotlib plots shown with plt.show() come back as images. Install packages with %pip install <name> if the sandbox has network access.`,
    runCode:
      "Run Python code in a persistent Jupyter kernel and return what it printed (stdout, stderr), rich outputs and the value of the last expression. " +
      "Variables, imports and function definitions persist between calls; so do files. " +
      `${files} ` +
      "Plots: call plt.show() (matplotlib) and each figure comes back as an image. DataFrames come back as their text table; " +
      "print(df.head()) or df.describe() to keep results short. " +
      `Limits: each call may run ${seconds(limits.defaultTimeoutMs)} by default (set timeoutMs, up to ${seconds(limits.maxTimeoutMs)}); ` +
      `when it runs past that the code is interrupted. stdout and stderr are each cut after ${limits.maxOutputBytes} bytes: write large results to a file. ` +
      "An exception returns an error result with the traceback: fix the code and call again. " +
      "input(): the user may be asked to answer each prompt; otherwise pass the answers up front as stdin (a list of lines, one per input() call), " +
      "or avoid input() and put values in the code.",
    listFiles: `List the files in the session's workspace (path, size in bytes, last modified). ${files}`,
    readFile:
      `Read a file from the workspace. Text comes back as text; images as images; other binary files as base64 with their mime type. ` +
      `At most ${limits.maxReadBytes} bytes: for bigger files, use run_code to read the part you need (e.g. pandas, or open(...).read(4096)). ${files}`,
    writeFile:
      "Create or replace a file in the workspace (directories are created as needed). content is text (UTF-8) unless encoding is 'base64'. " +
      `The code sees it at once under the same relative path. ${files}`,
    restartKernel:
      "Restart the Python kernel: every variable, import and definition is gone; files in the workspace stay. " +
      "Use it when the kernel is stuck or its state is broken; a running call is ended first.",
  };
}
