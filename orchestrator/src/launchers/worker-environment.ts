import { isSecretVariableName } from "../secret-names.js";

export { isSecretVariableName };

/**
 * What an unsandboxed local worker inherits from the orchestrator's
 * environment. The kernel runs user code with the worker's environment, so
 * anything that looks like a secret (TETHER_API_KEYS, AZURE_CLIENT_SECRET, a
 * *_TOKEN, ...) stays behind; the join token reaches the worker in a file.
 */
export function inheritableEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !isSecretVariableName(name)) inherited[name] = value;
  }
  return inherited;
}
