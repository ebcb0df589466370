import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "@tether/orchestrator";
import { evaluate, functionNames, type ArmContext } from "./helpers/arm-expressions.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const templateText = readFileSync(join(repoRoot, "infra/azure/main.json"), "utf8");
const bicep = readFileSync(join(repoRoot, "infra/azure/main.bicep"), "utf8");

type Resource = { type: string; apiVersion: string; name: string; scope?: string; properties?: Record<string, unknown>; dependsOn?: string[]; [key: string]: unknown };
type Template = {
  $schema: string;
  contentVersion: string;
  parameters: Record<string, { type: string; defaultValue?: unknown; allowedValues?: unknown[] }>;
  variables: Record<string, unknown>;
  resources: Resource[];
  outputs: Record<string, { type: string; value: unknown }>;
};
type EnvVar = { name: string; value?: string; secretRef?: string };

const template = JSON.parse(templateText) as Template;
const JOBS_OPERATOR_ROLE = "b9a307c4-5aa3-4b52-ba60-2b17c136cd7b";
const BLOB_DATA_CONTRIBUTOR_ROLE = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
const SUBSCRIPTION_ID = "00000000-0000-4000-8000-0000000000a1";
const REQUIRED = { orchestratorImage: "tetheracr.azurecr.io/tether-orchestrator:1", workerImage: "tetheracr.azurecr.io/tether-worker:1", apiKeys: "alice:sample-key" };

/**
 * apiVersions checked against public templates and Microsoft's REST reference
 * (Microsoft.App 2025-01-01 in the Container Apps REST docs; the others as used
 * by Azure's own samples and the Bicep registry modules).
 */
const API_VERSIONS: Record<string, string> = {
  "Microsoft.OperationalInsights/workspaces": "2023-09-01",
  "Microsoft.App/managedEnvironments": "2025-01-01",
  "Microsoft.App/jobs": "2025-01-01",
  "Microsoft.App/containerApps": "2025-01-01",
  "Microsoft.ManagedIdentity/userAssignedIdentities": "2023-01-31",
  "Microsoft.Authorization/roleAssignments": "2022-04-01",
  "Microsoft.Storage/storageAccounts": "2023-05-01",
  "Microsoft.Storage/storageAccounts/blobServices/containers": "2023-05-01",
  "Microsoft.Cache/redis": "2024-03-01",
  "Microsoft.Cache/redis/accessPolicyAssignments": "2024-03-01",
};

/** Every string expression in the template, with where it is. */
function expressions(value: unknown, at = "$"): { at: string; expression: string }[] {
  if (typeof value === "string") return value.startsWith("[") && !value.startsWith("[[") ? [{ at, expression: value }] : [];
  if (Array.isArray(value)) return value.flatMap((item, index) => expressions(item, `${at}[${index}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([key, item]) => [...expressions(key, at), ...expressions(item, `${at}.${key}`)]);
  return [];
}

/** The template evaluated for a deployment with these parameters (defaults for the rest). */
function deploy(parameters: Record<string, unknown> = {}): { resources: Resource[]; outputs: Record<string, unknown> } {
  const values: Record<string, unknown> = {};
  for (const [name, definition] of Object.entries(template.parameters)) {
    if (name in parameters) values[name] = parameters[name];
    else if (name in REQUIRED) values[name] = REQUIRED[name as keyof typeof REQUIRED];
    else if (definition.defaultValue !== undefined) values[name] = definition.defaultValue;
    else throw new Error(`no value for required parameter ${name}`);
  }
  const context: ArmContext = { parameters: {}, variables: template.variables, subscriptionId: SUBSCRIPTION_ID, resourceGroup: "tether-rg" };
  // Parameter defaults are expressions too (location).
  context.parameters = Object.fromEntries(Object.entries(values).map(([name, value]) => [name, evaluate(value, context)]));
  return {
    resources: evaluate(template.resources, context) as Resource[],
    outputs: Object.fromEntries(Object.entries(template.outputs).map(([name, output]) => [name, evaluate(output.value, context)])),
  };
}

function only(resources: Resource[], type: string): Resource {
  const found = resources.filter((resource) => resource.type === type);
  expect(found, type).toHaveLength(1);
  return found[0] as Resource;
}

function orchestratorEnv(resources: Resource[]): EnvVar[] {
  const app = only(resources, "Microsoft.App/containerApps") as { properties: { template: { containers: { env: EnvVar[] }[] } } } & Resource;
  return app.properties.template.containers[0]?.env ?? [];
}

describe("the Azure template infra/azure/main.json", () => {
  it("is a deployment template whose resources all have a type, an apiVersion checked against public templates, and a name", () => {
    expect(template.$schema).toBe("https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#");
    expect(template.contentVersion).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const resource of template.resources) {
      expect(resource.type, JSON.stringify(resource).slice(0, 80)).toMatch(/^Microsoft\.[A-Za-z]+\/[A-Za-z/]+$/);
      expect(resource.name, resource.type).toEqual(expect.any(String));
      expect(resource.apiVersion, resource.type).toBe(API_VERSIONS[resource.type]);
    }
    expect(new Set(template.resources.map((r) => r.type))).toEqual(new Set(Object.keys(API_VERSIONS)));
    // reference() and listKeys() name the apiVersion of the resource they read.
    for (const { at, expression } of expressions(template)) {
      for (const match of expression.matchAll(/(?:reference|listKeys)\(resourceId\('([^']+)'[^)]*\), '([^']+)'\)/g)) expect(match[2], `${at}: ${match[1] ?? ""}`).toBe(API_VERSIONS[match[1] ?? ""]);
    }
  });

  it("references only parameters and variables it declares, and uses every one it declares", () => {
    const all = expressions(template).map((e) => e.expression).join("\n");
    const usedParameters = new Set([...all.matchAll(/parameters\('([^']+)'\)/g)].map((m) => m[1]));
    const usedVariables = new Set([...all.matchAll(/variables\('([^']+)'\)/g)].map((m) => m[1]));
    expect([...usedParameters].sort()).toEqual(Object.keys(template.parameters).sort());
    expect([...usedVariables].sort()).toEqual(Object.keys(template.variables).sort());
    const known = new Set(["parameters", "variables", "format", "resourceId", "subscriptionResourceId", "extensionResourceId", "reference", "listKeys", "guid", "uniqueString", "resourceGroup", "subscription", "take", "toLower", "replace", "json", "if", "equals", "createArray"]);
    for (const { at, expression } of expressions(template)) for (const name of functionNames(expression)) expect(known.has(name), `${at}: ${name}()`).toBe(true);
  });

  it("defines the worker job with a manual trigger, no retries, one replica and the replica timeout parameter", () => {
    const { resources } = deploy({ workerReplicaTimeoutSeconds: 7200 });
    const job = only(resources, "Microsoft.App/jobs") as Resource & { properties: { workloadProfileName: string; configuration: Record<string, unknown>; template: { containers: { name: string; image: string; resources: { cpu: number; memory: string } }[] } } };
    expect(job.name).toBe("tether-worker");
    expect(job.properties.configuration).toEqual({ triggerType: "Manual", replicaTimeout: 7200, replicaRetryLimit: 0, manualTriggerConfig: { parallelism: 1, replicaCompletionCount: 1 } });
    expect(job.properties.workloadProfileName).toBe("Consumption");
    expect(job.properties.template.containers).toEqual([{ name: "worker", image: REQUIRED.workerImage, resources: { cpu: 0.5, memory: "1Gi" } }]);
    expect(template.parameters.workerReplicaTimeoutSeconds?.defaultValue).toBeGreaterThan(86_400);
  });

  it("adds a serverless GPU workload profile to the environment and runs the job on it when enableGpu is set", () => {
    const cpu = deploy();
    const environment = only(cpu.resources, "Microsoft.App/managedEnvironments") as Resource & { properties: { workloadProfiles: unknown[] } };
    expect(environment.properties.workloadProfiles).toEqual([{ name: "Consumption", workloadProfileType: "Consumption" }]);
    const gpu = deploy({ enableGpu: true, gpuProfileType: "Consumption-GPU-NC24-A100", workerCpu: "24", workerMemory: "220Gi" });
    const gpuEnvironment = only(gpu.resources, "Microsoft.App/managedEnvironments") as Resource & { properties: { workloadProfiles: unknown[] } };
    expect(gpuEnvironment.properties.workloadProfiles).toEqual([
      { name: "Consumption", workloadProfileType: "Consumption" },
      { name: "gpu", workloadProfileType: "Consumption-GPU-NC24-A100" },
    ]);
    const job = only(gpu.resources, "Microsoft.App/jobs") as Resource & { properties: { workloadProfileName: string; template: { containers: { resources: unknown }[] } } };
    expect(job.properties.workloadProfileName).toBe("gpu");
    expect(job.properties.template.containers[0]?.resources).toEqual({ cpu: 24, memory: "220Gi" });
    expect(template.parameters.gpuProfileType?.allowedValues).toEqual(["Consumption-GPU-NC8as-T4", "Consumption-GPU-NC24-A100"]);
  });

  it("gives the orchestrator's user-assigned identity Container Apps Jobs Operator on the worker job only, and blob data access on the snapshot container only", () => {
    const { resources } = deploy();
    const assignments = resources.filter((r) => r.type === "Microsoft.Authorization/roleAssignments") as (Resource & { properties: { roleDefinitionId: string; principalId: unknown; principalType: string } })[];
    expect(assignments.map((a) => a.scope)).toEqual(["Microsoft.App/jobs/tether-worker", expect.stringMatching(/^Microsoft\.Storage\/storageAccounts\/[a-z0-9]{3,24}\/blobServices\/default\/containers\/snapshots$/)]);
    const [jobsOperator, blob] = assignments;
    expect(jobsOperator?.properties.roleDefinitionId).toBe(`/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/${JOBS_OPERATOR_ROLE}`);
    expect(blob?.properties.roleDefinitionId).toMatch(new RegExp(`/roleDefinitions/${BLOB_DATA_CONTRIBUTOR_ROLE}$`));
    const identity = only(resources, "Microsoft.ManagedIdentity/userAssignedIdentities");
    expect(identity.name).toBe("tether-orchestrator-id");
    // Both name the template's one identity (checked on the expressions: reference() results are samples here).
    const identityTemplate = template.resources.find((r) => r.type === "Microsoft.ManagedIdentity/userAssignedIdentities");
    expect(identityTemplate?.name).toBe("[variables('identityName')]");
    for (const [index, assignment] of assignments.entries()) {
      expect(assignment.properties.principalType).toBe("ServicePrincipal");
      const raw = template.resources.filter((r) => r.type === "Microsoft.Authorization/roleAssignments")[index]?.properties as { principalId: string } | undefined;
      expect(raw?.principalId).toBe("[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', variables('identityName')), '2023-01-31').principalId]");
    }
    const app = only(resources, "Microsoft.App/containerApps") as Resource & { identity: { type: string; userAssignedIdentities: Record<string, unknown> } };
    expect(app.identity.type).toBe("UserAssigned");
    expect(Object.keys(app.identity.userAssignedIdentities)).toEqual([expect.stringMatching(new RegExp(`/userAssignedIdentities/${identity.name}$`))]);
    // The app waits for its role: without it the orchestrator refuses to start (LAUNCH_FORBIDDEN at reconcile).
    expect(app.dependsOn?.some((d) => d.includes("Microsoft.Authorization/roleAssignments"))).toBe(true);
  });

  it("sets only orchestrator env names config.ts reads (plus AZURE_CLIENT_ID for @azure/identity), in a configuration it accepts", () => {
    const { resources } = deploy();
    const env = orchestratorEnv(resources);
    const sources = ["orchestrator/src/config.ts"].map((file) => readFileSync(join(repoRoot, file), "utf8")).join("\n");
    for (const { name } of env) if (name !== "AZURE_CLIENT_ID") expect(sources, name).toMatch(new RegExp(`(env\\.|")${name}\\b`));
    const values = Object.fromEntries(env.map((v) => [v.name, v.secretRef === "tether-api-keys" ? REQUIRED.apiKeys : (v.value ?? "")]));
    expect(values.AZURE_CLIENT_ID).toBe("66666666-7777-4888-9999-000000000000");
    const config = loadConfig(values);
    expect(config.launcher).toBe("azure");
    expect(config.apiKeys).toEqual([{ tenant: "alice", key: "sample-key" }]);
    expect(config.publicUrl).toBe("wss://tether-orchestrator.calmsea-1a2b3c4d.westeurope.azurecontainerapps.io");
    const job = only(resources, "Microsoft.App/jobs") as Resource & { properties: { template: { containers: { name: string; resources: { cpu: number; memory: string } }[] } } };
    expect(config.azure).toMatchObject({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: "tether-rg",
      jobName: job.name,
      workerImage: REQUIRED.workerImage,
      containerName: job.properties.template.containers[0]?.name,
      cpu: job.properties.template.containers[0]?.resources.cpu,
      memory: job.properties.template.containers[0]?.resources.memory,
    });
    expect(config.python).toBeUndefined();
    // The API keys never appear in plain text in the app: a secret, referenced.
    const app = only(resources, "Microsoft.App/containerApps") as Resource & { properties: { configuration: { secrets: { name: string; value: string }[]; ingress: Record<string, unknown> }; template: { scale: unknown } } };
    expect(env.find((v) => v.name === "TETHER_API_KEYS")).toEqual({ name: "TETHER_API_KEYS", secretRef: "tether-api-keys" });
    expect(template.parameters.apiKeys?.type).toBe("securestring");
    expect(app.properties.configuration.ingress).toMatchObject({ external: true, targetPort: Number(values.TETHER_PORT), allowInsecure: false });
    expect(app.properties.template.scale).toEqual({ minReplicas: 1, maxReplicas: 1 });
  });

  it("provisions Redis with Entra auth and TLS only, and a private snapshot container (scale-out feature), and outputs where everything is", () => {
    const { resources, outputs } = deploy();
    const redis = only(resources, "Microsoft.Cache/redis") as Resource & { properties: Record<string, unknown> };
    expect(redis.properties).toMatchObject({ enableNonSslPort: false, minimumTlsVersion: "1.2", redisConfiguration: { "aad-enabled": "true" }, sku: { name: "Basic", family: "C", capacity: 0 } });
    expect((only(deploy({ redisSkuName: "Premium", redisCapacity: 1 }).resources, "Microsoft.Cache/redis").properties as { sku: unknown }).sku).toEqual({ name: "Premium", family: "P", capacity: 1 });
    const storage = only(resources, "Microsoft.Storage/storageAccounts") as Resource & { properties: Record<string, unknown> };
    expect(storage.name).toMatch(/^[a-z0-9]{3,24}$/);
    expect(storage.properties).toMatchObject({ allowBlobPublicAccess: false, allowSharedKeyAccess: false, minimumTlsVersion: "TLS1_2" });
    expect(only(resources, "Microsoft.Storage/storageAccounts/blobServices/containers").properties).toEqual({ publicAccess: "None" });
    expect(Object.keys(outputs).sort()).toEqual(
      ["orchestratorUrl", "workerDialBackUrl", "jobName", "jobResourceId", "orchestratorIdentityClientId", "orchestratorIdentityPrincipalId", "redisHostName", "snapshotStorageAccount", "snapshotContainerUrl"].sort(),
    );
    expect(outputs.workerDialBackUrl).toBe("wss://tether-orchestrator.calmsea-1a2b3c4d.westeurope.azurecontainerapps.io");
    expect(outputs.jobName).toBe("tether-worker");
  });
});

describe("the Bicep source infra/azure/main.bicep", () => {
  it("declares the same parameters, resource types and apiVersions, roles and outputs as main.json", () => {
    const params = [...bicep.matchAll(/^param (\w+) /gm)].map((m) => m[1]);
    expect(params.sort()).toEqual(Object.keys(template.parameters).sort());
    const resources = [...bicep.matchAll(/^resource \w+ '([^@']+)@([^']+)'/gm)].map((m) => `${m[1] ?? ""}@${m[2] ?? ""}`);
    expect(resources.sort()).toEqual(template.resources.map((r) => `${r.type}@${r.apiVersion}`).sort());
    const outputs = [...bicep.matchAll(/^output (\w+) /gm)].map((m) => m[1]);
    expect(outputs.sort()).toEqual(Object.keys(template.outputs).sort());
    for (const role of [JOBS_OPERATOR_ROLE, BLOB_DATA_CONTRIBUTOR_ROLE]) expect(bicep).toContain(`'${role}'`);
    expect(bicep).toMatch(/triggerType: 'Manual'\n\s+replicaTimeout: workerReplicaTimeoutSeconds\n(\s+\/\/.*\n)?\s+replicaRetryLimit: 0/);
    expect(bicep).toMatch(/resource jobsOperator 'Microsoft\.Authorization\/roleAssignments@2022-04-01' = \{\n\s+scope: job\n/);
    const bicepEnv = [...bicep.matchAll(/\{ name: '(\w+)', (?:value|secretRef): /g)].map((m) => m[1]);
    expect(bicepEnv).toEqual(orchestratorEnv(template.resources).map((v) => v.name));
  });
});
