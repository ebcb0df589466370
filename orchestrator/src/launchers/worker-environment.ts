/**
 * What a local worker inherits from the orchestrator's environment. The
 * kernel runs user code with the worker's environment, so anything that looks
 * like a secret (TETHER_API_KEYS, AZURE_CLIENT_SECRET, a *_TOKEN, TETHER_REDIS_URL
 * with its password and every session's events behind it, ...) stays
 * behind; the launch's own join token is added back by the launcher, and the
 * worker strips it before Jupyter starts.
 */
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|API_?KEYS?|CREDENTIAL|PRIVATE_KEY|CONNECTION_STRING|REDIS_URL/i;

export function isSecretVariableName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export function inheritableEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !isSecretVariableName(name)) inherited[name] = value;
  }
  return inherited;
}
