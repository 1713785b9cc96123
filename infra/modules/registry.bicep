// Container Registry: no admin user; the app's identity pulls with AcrPull.
param name string
param location string
param tags object
param pullPrincipalId string

var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139: azd pushes from a laptop or a hosted runner and the Container Apps environment has no VNet; private endpoints need Premium and a network design this template leaves out. Pushes and pulls need Entra tokens (no admin user, no anonymous pull).
  // checkov:skip=CKV_AZURE_166: quarantine is a Premium-only preview feature; images come only from this repository's own build.
  // checkov:skip=CKV_AZURE_163: image scanning is Microsoft Defender for Containers, switched on per subscription, not per registry.
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, pullPrincipalId, acrPullRoleId)
  scope: registry
  properties: {
    principalId: pullPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
