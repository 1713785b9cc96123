// Azure OpenAI account with local (key) auth disabled, and one chat model deployment.
param name string
param location string
param tags object
param deploymentName string
param modelName string
param modelVersion string
param skuName string
param capacity int

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_134: the Container Apps environment has no VNet, so the app reaches the account over its public endpoint; every call needs an Entra token (keys are disabled) with the OpenAI User role on this account.
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // Entra ID tokens need a custom subdomain; keys are switched off entirely.
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: skuName
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output name string = account.name
