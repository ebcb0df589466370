import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** Azurite's well-known development account (public, documented by Microsoft: not a secret). */
const ACCOUNT = "devstoreaccount1";
const ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Azurite's blob service (the npm package, the Azure Storage emulator) on a free loopback port, data in a temp dir, stopped by its PID. */
export interface TestAzurite {
  port: number;
  blobEndpoint: string;
  /** A connection string for the emulator's development account. */
  connectionString: string;
  /** Stops it abruptly (SIGKILL): requests then fail as with a storage outage. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);

export async function startTestAzurite(): Promise<TestAzurite> {
  const main = join(dirname(require.resolve("azurite/package.json")), "dist/src/blob/main.js");
  const dir = await mkdtemp(join(tmpdir(), "tether-azurite-"));
  // Port 0: azurite prints the port it got. --skipApiVersionCheck: the SDK may speak a newer
  // service version than this emulator knows. No telemetry: this machine reaches no network.
  const args = [main, "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", dir, "--silent", "--loose", "--skipApiVersionCheck", "--disableTelemetry"];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => reject(new Error(`azurite did not start within 20 s:\n${output}`)), 20_000);
      const onData = (chunk: string): void => {
        output += chunk;
        const match = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout?.setEncoding("utf8").on("data", onData);
      child.stderr?.setEncoding("utf8").on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`azurite exited with code ${code}:\n${output}`));
      });
    });
  } catch (error) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  const blobEndpoint = `http://127.0.0.1:${port}/${ACCOUNT}`;
  return {
    port,
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
