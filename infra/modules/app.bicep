// Container Apps environment and the chatbackend app: keyless Azure OpenAI through the app's
// user-assigned identity, HTTP probes on the health routes, an HTTP scale rule.
param environmentName string
param appName string
param location string
param tags object
@description('True once azd has deployed an image: provisioning again keeps it.')
param exists bool
param identityName string
param registryServer string
param logAnalyticsName string
param appInsightsName string
param openAiEndpoint string
param openAiDeploymentName string
param minReplicas int
param maxReplicas int
param concurrentRequestsPerReplica int
@description('PostgreSQL as the app\'s identity (no password: an Entra token per connection). Empty: SQLite in the container.')
param databaseUrl string
@description('Azure Managed Redis as the app\'s identity (Entra token). Empty: limits and cool-downs in each replica\'s memory.')
param redisUrl string

@description('CPU cores per replica; gunicorn starts one worker per granted core (at least one).')
param cpu string = '0.5'
param memory string = '1Gi'

// gunicorn.conf.py binds PORT; the ingress targets it and the probes call it.
var port = 8000
// In-flight answers get gracefulTimeout seconds after SIGTERM; the platform waits a little longer
// before it kills the replica, so gunicorn can stop its workers itself.
var gracefulTimeout = 120
var terminationGracePeriod = 135
// Without PostgreSQL, the app's default file inside the container (one replica only).
var sqliteUrl = 'sqlite+aiosqlite:///data/chatbackend.db'
// Until `azd deploy` pushes the real image, the app runs a public placeholder.
var placeholderImage = 'mcr.microsoft.com/azuredocs/containerapps-helloworld:latest'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource existingApp 'Microsoft.App/containerApps@2024-03-01' existing = if (exists) {
  name: appName
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: port
        transport: 'auto'
        allowInsecure: false
      }
      registries: [
        {
          server: registryServer
          identity: identity.id
        }
      ]
    }
    template: {
      terminationGracePeriodSeconds: terminationGracePeriod
      containers: [
        {
          name: 'api'
          image: exists ? existingApp.properties.template.containers[0].image : placeholderImage
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          env: [
            {
              name: 'CHAT_PROVIDER'
              value: 'azure'
            }
            {
              name: 'AZURE_OPENAI_ENDPOINT'
              value: openAiEndpoint
            }
            {
              name: 'AZURE_OPENAI_DEPLOYMENT'
              value: openAiDeploymentName
            }
            {
              name: 'AZURE_CLIENT_ID'
              value: identity.properties.clientId
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              value: appInsights.properties.ConnectionString
            }
            {
              name: 'OTEL_SERVICE_NAME'
              value: 'chatbackend'
            }
            {
              name: 'PORT'
              value: string(port)
            }
            {
              name: 'GRACEFUL_TIMEOUT'
              value: string(gracefulTimeout)
            }
            {
              // Every route but health and the page needs an API key (`python -m chatbackend keys create`).
              name: 'AUTH_MODE'
              value: 'api-key'
            }
            {
              name: 'DATABASE_URL'
              value: empty(databaseUrl) ? sqliteUrl : databaseUrl
            }
            {
              name: 'DATABASE_ENTRA_AUTH'
              value: empty(databaseUrl) ? 'false' : 'true'
            }
            {
              name: 'REDIS_URL'
              value: redisUrl
            }
            {
              name: 'REDIS_ENTRA_AUTH'
              value: empty(redisUrl) ? 'false' : 'true'
            }
          ]
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/health/live'
                port: port
              }
              periodSeconds: 10
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/health/ready'
                port: port
              }
              periodSeconds: 5
              failureThreshold: 3
            }
            {
              type: 'Startup'
              httpGet: {
                path: '/health/live'
                port: port
              }
              // Up to 30 s to start; Container Apps allows at most 10 failures per probe.
              periodSeconds: 3
              failureThreshold: 10
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: string(concurrentRequestsPerReplica)
              }
            }
          }
        ]
      }
    }
  }
}

output name string = app.name
output environmentName string = environment.name
output uri string = 'https://${app.properties.configuration.ingress.fqdn}'
