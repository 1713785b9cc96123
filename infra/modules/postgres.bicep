// Azure Database for PostgreSQL Flexible Server with Microsoft Entra authentication only: no
// administrator password exists. The app's user-assigned identity is an Entra administrator
// (a database role of the identity's name), and signs in with a token per new connection.
param name string
param location string
param tags object
param databaseName string
@description('Name and principal id of the app\'s user-assigned identity: the role it signs in as.')
param appIdentityName string
param appPrincipalId string
param skuName string
param skuTier string
param version string
param storageSizeGB int

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    // Point-in-time restore within the region for 7 days; geo-redundant backup doubles the
    // storage bill of this starter, so it is left for production data to switch on.
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// 0.0.0.0 is the platform's rule for "Azure services": the Container Apps environment has no
// VNet, so the app reaches the server over its public endpoint (TLS, Entra token per login).
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

// The administrator is added after the server, its database and its firewall rule, and before
// the configuration change (the service refuses concurrent changes to them).
resource appAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: appPrincipalId
  properties: {
    principalName: appIdentityName
    principalType: 'ServicePrincipal'
    tenantId: subscription().tenantId
  }
  dependsOn: [
    database
    allowAzure
  ]
}

// pgvector for retrieval: the extension must be allow-listed before CREATE EXTENSION vector.
resource extensions 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'azure.extensions'
  properties: {
    value: 'VECTOR'
    source: 'user-override'
  }
  dependsOn: [
    appAdmin
  ]
}

output host string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
