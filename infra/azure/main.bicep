// Tether on Azure Container Apps. main.json is the deployable artifact (ARM JSON,
// checked offline by test/azure-template.test.ts); this file is its Bicep source,
// kept in step BY HAND: no Bicep compiler was available where it was written, so
// `az bicep build -f infra/azure/main.bicep` has never been run on it.
//
//   the orchestrator   Container App (TETHER_LAUNCHER=azure), external ingress, one replica,
//                      user-assigned identity with Container Apps Jobs Operator on the job only
//   the worker job     manual trigger, replicaRetryLimit 0, parallelism 1, replicaTimeout param,
//                      optionally on a serverless GPU workload profile
//   scale-out feature  Azure Cache for Redis (Entra auth) and a blob container for snapshots,
//                      with data access for the orchestrator's identity; not used by this version yet

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Prefix of resource names (lowercase letters, digits, \'-\').')
@minLength(3)
@maxLength(12)
param namePrefix string = 'tether'

@description('Orchestrator image (infra/orchestrator.Dockerfile), pullable without credentials or through a registry the environment can reach.')
param orchestratorImage string

@description('Worker image (infra/worker.Dockerfile): the job\'s image and TETHER_AZURE_WORKER_IMAGE.')
param workerImage string

@description('TETHER_API_KEYS, \'tenant:key,tenant:key\'; kept as a Container App secret.')
@secure()
param apiKeys string

@description('vCPUs per worker (TETHER_AZURE_CPU), e.g. 0.5; 8 for the T4 GPU profile.')
param workerCpu string = '0.5'

@description('Memory per worker (TETHER_AZURE_MEMORY), e.g. 1Gi; 56Gi for the T4 GPU profile.')
param workerMemory string = '1Gi'

@description('replicaTimeout of the job: longer than a worker may live (TETHER_MAX_SESSION_LIFETIME_S, 86400, plus time in the warm pool).')
@minValue(600)
param workerReplicaTimeoutSeconds int = 90000

@description('Add a serverless GPU workload profile to the environment and run the worker job on it.')
param enableGpu bool = false

@description('Serverless GPU workload profile type (region-dependent availability).')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfileType string = 'Consumption-GPU-NC8as-T4'

@description('Azure Cache for Redis SKU (scale-out feature; not used by this orchestrator version).')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param redisSkuName string = 'Basic'

@description('Azure Cache for Redis size within the SKU family (C0-C6, P1-P5).')
@minValue(0)
@maxValue(6)
param redisCapacity int = 0

var environmentName = '${namePrefix}-env'
var jobName = '${namePrefix}-worker'
var orchestratorAppName = '${namePrefix}-orchestrator'
var identityName = '${namePrefix}-orchestrator-id'
var logWorkspaceName = '${namePrefix}-logs'
var redisName = '${namePrefix}-redis-${uniqueString(resourceGroup().id)}'
var storageAccountName = take(toLower(replace('${namePrefix}snap${uniqueString(resourceGroup().id)}', '-', '')), 24)
var snapshotContainerName = 'snapshots'
var workerContainerName = 'worker'
// Built-in roles: Container Apps Jobs Operator (read, start and stop jobs) and Storage Blob Data Contributor.
var jobsOperatorRoleId = 'b9a307c4-5aa3-4b52-ba60-2b17c136cd7b'
var blobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var consumptionProfile = {
  name: 'Consumption'
  workloadProfileType: 'Consumption'
}
var gpuProfile = {
  name: 'gpu'
  workloadProfileType: gpuProfileType
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logWorkspaceName
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: environmentName
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
    workloadProfiles: enableGpu ? [consumptionProfile, gpuProfile] : [consumptionProfile]
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
}

resource job 'Microsoft.App/jobs@2025-01-01' = {
  name: jobName
  location: location
  properties: {
    environmentId: environment.id
    workloadProfileName: enableGpu ? 'gpu' : 'Consumption'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: workerReplicaTimeoutSeconds
      // A worker that dies is a lost worker: the session resumes on a new execution.
      replicaRetryLimit: 0
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
    }
    template: {
      containers: [
        {
          name: workerContainerName
          image: workerImage
          resources: {
            cpu: json(workerCpu)
            memory: workerMemory
          }
        }
      ]
    }
  }
}

resource jobsOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: job
  name: guid(job.id, identity.id, jobsOperatorRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', jobsOperatorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Tether orchestrator: start, read and stop executions of this worker job only (Container Apps Jobs Operator).'
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  sku: {
    name: 'Standard_LRS'
  }
  kind: 'StorageV2'
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource snapshotContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  name: '${storage.name}/default/${snapshotContainerName}'
  properties: {
    publicAccess: 'None'
  }
}

resource snapshotWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: snapshotContainer
  name: guid(snapshotContainer.id, identity.id, blobDataContributorRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Tether orchestrator: read and write session snapshots in this container only (scale-out feature).'
  }
}

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  name: redisName
  location: location
  properties: {
    sku: {
      name: redisSkuName
      family: redisSkuName == 'Premium' ? 'P' : 'C'
      capacity: redisCapacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    redisConfiguration: {
      'aad-enabled': 'true'
    }
  }
}

resource redisAccess 'Microsoft.Cache/redis/accessPolicyAssignments@2024-03-01' = {
  parent: redis
  name: 'tether-orchestrator'
  properties: {
    accessPolicyName: 'Data Contributor'
    objectId: identity.properties.principalId
    objectIdAlias: identityName
  }
}

resource orchestrator 'Microsoft.App/containerApps@2025-01-01' = {
  name: orchestratorAppName
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    managedEnvironmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8080
        transport: 'auto'
        allowInsecure: false
      }
      secrets: [
        {
          name: 'tether-api-keys'
          value: apiKeys
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'orchestrator'
          image: orchestratorImage
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: [
            { name: 'TETHER_HOST', value: '0.0.0.0' }
            { name: 'TETHER_PORT', value: '8080' }
            { name: 'TETHER_API_KEYS', secretRef: 'tether-api-keys' }
            { name: 'TETHER_LAUNCHER', value: 'azure' }
            // The app's own external FQDN: job executions dial back over TLS through the ingress.
            { name: 'TETHER_PUBLIC_URL', value: 'wss://${orchestratorAppName}.${environment.properties.defaultDomain}' }
            { name: 'TETHER_AZURE_SUBSCRIPTION_ID', value: subscription().subscriptionId }
            { name: 'TETHER_AZURE_RESOURCE_GROUP', value: resourceGroup().name }
            { name: 'TETHER_AZURE_JOB_NAME', value: jobName }
            { name: 'TETHER_AZURE_WORKER_IMAGE', value: workerImage }
            { name: 'TETHER_AZURE_CPU', value: workerCpu }
            { name: 'TETHER_AZURE_MEMORY', value: workerMemory }
            { name: 'TETHER_AZURE_CONTAINER_NAME', value: workerContainerName }
            // Workers use their image's Python.
            { name: 'TETHER_PYTHON', value: '' }
            { name: 'TETHER_LOG_LEVEL', value: 'info' }
            // DefaultAzureCredential picks the user-assigned identity by its client id.
            { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
          ]
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 8080
              }
              periodSeconds: 20
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 8080
              }
              periodSeconds: 5
            }
          ]
        }
      ]
      // One replica: at start the orchestrator stops every execution of the job it did not start.
      scale: {
        minReplicas: 1
        maxReplicas: 1
      }
    }
  }
  dependsOn: [
    jobsOperator
  ]
}

output orchestratorUrl string = 'https://${orchestrator.properties.configuration.ingress.fqdn}'
output workerDialBackUrl string = 'wss://${orchestratorAppName}.${environment.properties.defaultDomain}'
output jobName string = job.name
output jobResourceId string = job.id
output orchestratorIdentityClientId string = identity.properties.clientId
output orchestratorIdentityPrincipalId string = identity.properties.principalId
output redisHostName string = redis.properties.hostName
output snapshotStorageAccount string = storage.name
output snapshotContainerUrl string = '${storage.properties.primaryEndpoints.blob}${snapshotContainerName}'
