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

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var reuseOpenAi = !empty(existingOpenAiName)

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
