import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A throwaway certificate for 127.0.0.1 (P-256, one day), made with the
 * openssl CLI (Node cannot issue certificates). The fake API server serves
 * it and the kubeconfig names it as the CA, so the client verifies TLS as it
 * would against a cluster.
 */
export async function selfSignedCertificate(dir: string): Promise<{ key: string; cert: string }> {
  const keyFile = join(dir, "tls.key");
  const certFile = join(dir, "tls.crt");
  try {
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=fake-kube-apiserver", "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE",
      "-keyout", keyFile, "-out", certFile,
    ]);
  } catch (error) {
    throw new Error(`The fake Kubernetes API server needs the openssl CLI for its TLS certificate (apt-get install openssl): ${(error as Error).message}`);
  }
  return { key: await readFile(keyFile, "utf8"), cert: await readFile(certFile, "utf8") };
}
