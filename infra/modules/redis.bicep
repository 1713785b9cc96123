// Azure Managed Redis for several replicas: rate-limit windows and provider cool-downs shared by
// all of them. Microsoft Entra authentication only (access keys disabled), TLS only; the app's
// identity gets the data access policy and signs in with a token.
param name string
param location string
param tags object
param appPrincipalId string
param skuName string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    accessKeysAuthentication: 'Disabled'
    clientProtocol: 'Encrypted'
    // One endpoint for the whole cluster, so a plain (non-cluster) client works.
    clusteringPolicy: 'EnterpriseCluster'
    // Counters are the state: never evict one to make room (each has its own expiry).
    evictionPolicy: 'NoEviction'
    port: 10000
  }
}

resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: 'app'
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: appPrincipalId
    }
  }
}

output host string = cluster.properties.hostName
output port int = database.properties.port
