// chatbackend on Azure Container Apps, talking to Azure OpenAI without any key (`azd up`).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of every resource except the Azure OpenAI account.')
param location string

@description('Object id of the user (or principal) running azd: gets the OpenAI role too, so the app also runs on a laptop against the same deployment. Empty: no role.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principalId: User for a person, ServicePrincipal for a CI identity.')
param principalType string = 'User'

@description('Region of the Azure OpenAI account (model availability differs by region). Empty: location.')
param openAiLocation string = ''

@description('Reuse this Azure OpenAI account instead of creating one (its name). Empty: create one.')
param existingOpenAiName string = ''

@description('Resource group of existingOpenAiName (same subscription).')
param existingOpenAiResourceGroupName string = ''

@description('Chat model deployment name; with existingOpenAiName, the existing deployment to use.')
param openAiDeploymentName string = 'chat'

@description('Model of the deployment that is created (ignored with existingOpenAiName).')
param openAiModelName string = 'gpt-4.1-mini'

@description('Model version of the deployment that is created.')
param openAiModelVersion string = '2025-04-14'

@allowed([
  'GlobalStandard'
  'DataZoneStandard'
  'Standard'
])
@description('Deployment SKU: GlobalStandard has the widest model and region availability.')
param openAiDeploymentSkuName string = 'GlobalStandard'

@minValue(1)
@description('Deployment capacity in thousands of tokens per minute.')
param openAiDeploymentCapacity int = 30

@description('True once azd has deployed the app: keeps the deployed image when provisioning again.')
param apiExists bool = false

@minValue(0)
@description('Replicas kept running; 0 scales to zero when idle (first request then waits for a start).')
param minReplicas int = 1

@minValue(1)
@description('Upper bound of replicas the HTTP rule may scale to.')
param maxReplicas int = 3

@minValue(1)
@description('Concurrent requests (streams included) per replica before the HTTP rule adds one.')
param concurrentRequestsPerReplica int = 40

@description('Keep conversations, API keys and documents in Azure Database for PostgreSQL (Entra authentication only). False: SQLite inside the container, lost with the replica; use it with maxReplicas 1 only.')
param enablePostgres bool = true

@description('PostgreSQL compute: Burstable B1ms is the smallest; GeneralPurpose for production load.')
param postgresSkuName string = 'Standard_B1ms'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@description('PostgreSQL major version (pgvector is allow-listed on every supported one).')
param postgresVersion string = '16'

@minValue(32)
@description('PostgreSQL storage in GiB; it grows by itself when nearly full.')
param postgresStorageSizeGB int = 32

@description('Azure Managed Redis SKU, deployed when maxReplicas > 1 so that rate limits and provider cool-downs hold across replicas.')
param redisSkuName string = 'Balanced_B0'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var reuseOpenAi = !empty(existingOpenAiName)
// Several replicas share their rate-limit windows and provider cool-downs through Redis.
var enableRedis = maxReplicas > 1
var databaseName = 'chatbackend'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: 'cr${resourceToken}'
    location: location
    tags: tags
    pullPrincipalId: identity.outputs.principalId
  }
}

module openAi 'modules/openai.bicep' = if (!reuseOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: 'oai-${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: openAiDeploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    skuName: openAiDeploymentSkuName
    capacity: openAiDeploymentCapacity
  }
}

module openAiAccess 'modules/openai-access.bicep' = {
  name: 'openai-access'
  scope: resourceGroup(reuseOpenAi ? existingOpenAiResourceGroupName : rg.name)
  params: {
    accountName: reuseOpenAi ? existingOpenAiName : openAi.outputs.name
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module postgres 'modules/postgres.bicep' = if (enablePostgres) {
  name: 'postgres'
  scope: rg
  params: {
    name: 'psql-${resourceToken}'
    location: location
    tags: tags
    databaseName: databaseName
    appIdentityName: identity.outputs.name
    appPrincipalId: identity.outputs.principalId
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    version: postgresVersion
    storageSizeGB: postgresStorageSizeGB
  }
}

module redis 'modules/redis.bicep' = if (enableRedis) {
  name: 'redis'
  scope: rg
  params: {
    name: 'redis-${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    skuName: redisSkuName
  }
}

module app 'modules/app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    environmentName: 'cae-${resourceToken}'
    appName: 'ca-api-${resourceToken}'
    location: location
    tags: tags
    exists: apiExists
    identityName: identity.outputs.name
    registryServer: registry.outputs.loginServer
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    appInsightsName: monitoring.outputs.appInsightsName
    openAiEndpoint: openAiAccess.outputs.endpoint
    openAiDeploymentName: openAiDeploymentName
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    concurrentRequestsPerReplica: concurrentRequestsPerReplica
    // The identity signs in as the database role of its own name, with an Entra token.
    databaseUrl: enablePostgres ? 'postgresql+asyncpg://${identity.outputs.name}@${postgres.outputs.host}:5432/${databaseName}?ssl=require' : ''
    // No user name: the app signs in as the object id its Entra token carries.
    redisUrl: enableRedis ? 'rediss://${redis.outputs.host}:${redis.outputs.port}/0' : ''
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_OPENAI_ENDPOINT string = openAiAccess.outputs.endpoint
output AZURE_OPENAI_DEPLOYMENT string = openAiDeploymentName
output AZURE_CLIENT_ID string = identity.outputs.clientId
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_ENVIRONMENT_NAME string = app.outputs.environmentName
output SERVICE_API_NAME string = app.outputs.name
output SERVICE_API_URI string = app.outputs.uri
output POSTGRES_HOST string = enablePostgres ? postgres.outputs.host : ''
output POSTGRES_DATABASE string = enablePostgres ? databaseName : ''
output POSTGRES_USERNAME string = enablePostgres ? identity.outputs.name : ''
output REDIS_HOST string = enableRedis ? redis.outputs.host : ''
