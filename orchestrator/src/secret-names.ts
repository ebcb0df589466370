/**
 * Names of environment variables that look like secrets (TETHER_API_KEYS,
 * AZURE_CLIENT_SECRET, a *_TOKEN, TETHER_REDIS_URL with its password and every
 * session's events behind it, ...): kernels run user code with their
 * environment, so these never reach a worker.
 */
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|API_?KEYS?|CREDENTIAL|PRIVATE_KEY|CONNECTION_STRING|REDIS_URL/i;

export function isSecretVariableName(name: string): boolean {
  return SECRET_NAME.test(name);
}
