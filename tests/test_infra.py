"""The deployment, checked without Azure: every Bicep file parsed with pycep-parser, a normalized
summary snapshot-tested, and the security and wiring properties asserted one by one."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_snapshot.plugin import Snapshot

from chatbackend.settings import Settings, load_settings
from tests.bicep import bicep_files, body, condition, expr, parse, plain

ROOT = Path(__file__).resolve().parents[1]
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
ROLE_NAMES = {ACR_PULL: "AcrPull", OPENAI_USER: "Cognitive Services OpenAI User"}
# What the azure provider needs from the app definition (settings.py reads them).
AZURE_REQUIRED = {
    "CHAT_PROVIDER",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_CLIENT_ID",
}
# Variables the app definition may set that are not Settings fields: read by gunicorn.conf.py
# (PORT, HOST, WEB_CONCURRENCY, GRACEFUL_TIMEOUT) or by OpenTelemetry /
# Application Insights.
STANDARD_VARIABLES = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "PORT",
    "HOST",
    "WEB_CONCURRENCY",
    "GRACEFUL_TIMEOUT",
}
SECRET_LIKE = re.compile(r"key|secret|password|connectionstring|listkeys|token", re.IGNORECASE)


def app_resource() -> dict[str, Any]:
    return body(parse("modules/app.bicep")["resources"]["app"])


def app_container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = app_resource()["properties"]["template"]["containers"]
    assert len(containers) == 1
    return containers[0]


def app_env() -> dict[str, str]:
    return {item["name"]: expr(item["value"]) for item in app_container()["env"]}


def app_variable(name: str) -> Any:
    return parse("modules/app.bicep")["variables"][name]["value"]


def role_assignments() -> list[dict[str, str]]:
    """Every role assignment in infra/, with the role named and the principal it goes to."""
    found = []
    for file in bicep_files():
        tree = parse(file)
        variables = {name: v["value"] for name, v in tree.get("variables", {}).items()}
        for symbol, resource in tree.get("resources", {}).items():
            if resource["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            properties = body(resource)["properties"]
            role_guid = variables[expr(properties["roleDefinitionId"]).split(", ")[-1][:-1]]
            found.append(
                {
                    "file": file,
                    "symbol": symbol,
                    "role": ROLE_NAMES.get(role_guid, role_guid),
                    "scope": expr(body(resource)["scope"]),
                    "principal": expr(properties["principalId"]),
                    "principalType": expr(properties["principalType"]),
                    "condition": condition(resource) or "always",
                }
            )
    return found


def summary() -> dict[str, Any]:
    """What the deployment is, in a form a reviewer can read in a diff."""
    files: dict[str, Any] = {}
    for file in bicep_files():
        tree = parse(file)
        files[file] = {
            "scope": tree["globals"]["scope"]["value"],
            "parameters": {
                name: expr(p["default"]) if p["default"] is not None else f"<{p['type']}>"
                for name, p in tree.get("parameters", {}).items()
            },
            "resources": {
                symbol: _describe_resource(resource)
                for symbol, resource in tree.get("resources", {}).items()
            },
            "modules": {
                symbol: _describe_module(module)
                for symbol, module in tree.get("modules", {}).items()
            },
            "outputs": {name: expr(o["value"]) for name, o in tree.get("outputs", {}).items()},
        }
    container = app_container()
    configuration = app_resource()["properties"]["configuration"]
    return {
        "files": files,
        "role_assignments": role_assignments(),
        "app": {
            "identity": plain(app_resource()["identity"]),
            "ingress": plain(configuration["ingress"]),
            "registries": plain(configuration["registries"]),
            "env": app_env(),
            "probes": plain(container["probes"]),
            "resources": plain(container["resources"]),
            "scale": plain(app_resource()["properties"]["template"]["scale"]),
            "variables": {
                name: v["value"] for name, v in parse("modules/app.bicep")["variables"].items()
            },
        },
    }


def _describe_resource(resource: dict[str, Any]) -> str:
    text = f"{resource['type']}@{resource['api_version']}"
    if resource["existing"]:
        text += " existing"
    if (test := condition(resource)) is not None:
        text += f" if ({test})"
    if "identity" in body(resource):
        text += f" identity={expr(body(resource)['identity']['type'])}"
    return text


def _describe_module(module: dict[str, Any]) -> str:
    text = f"{module['detail']['path']} scope={expr(body(module)['scope'])}"
    if (test := condition(module)) is not None:
        text += f" if ({test})"
    return text


def test_every_bicep_file_parses() -> None:
    assert bicep_files() == [
        "main.bicep",
        "modules/app.bicep",
        "modules/identity.bicep",
        "modules/monitoring.bicep",
        "modules/openai-access.bicep",
        "modules/openai.bicep",
        "modules/postgres.bicep",
        "modules/redis.bicep",
        "modules/registry.bicep",
    ]
    for file in bicep_files():
        assert parse(file)["globals"]["scope"]["value"] in ("subscription", "resourceGroup")


def test_deployment_summary_snapshot(snapshot: Snapshot) -> None:
    snapshot.assert_match(json.dumps(summary(), indent=2) + "\n", "deployment.json")


def test_main_is_subscription_scoped_with_a_resource_group_per_environment() -> None:
    main = parse("main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    group = main["resources"]["rg"]
    assert group["type"] == "Microsoft.Resources/resourceGroups"
    assert body(group)["name"] == "rg-${environmentName}"


def test_openai_local_auth_is_disabled() -> None:
    account = body(parse("modules/openai.bicep")["resources"]["account"])
    assert account["properties"]["disableLocalAuth"] is True
    assert account["properties"]["customSubDomainName"] == "name"  # Entra tokens need one


def test_registry_has_no_admin_user_and_no_anonymous_pull() -> None:
    registry = body(parse("modules/registry.bicep")["resources"]["registry"])
    assert registry["properties"]["adminUserEnabled"] is False
    assert registry["properties"]["anonymousPullEnabled"] is False


def test_app_pulls_and_calls_openai_with_its_identity_only() -> None:
    configuration = app_resource()["properties"]["configuration"]
    assert "secrets" not in configuration
    assert [plain(r) for r in configuration["registries"]] == [
        {"server": "registryServer", "identity": "identity.id"}
    ]
    assert not any("secretRef" in item for item in app_container()["env"])
    assert "AZURE_OPENAI_API_KEY" not in app_env()
    assignments = {(a["role"], a["principal"], a["condition"]) for a in role_assignments()}
    assert ("AcrPull", "pullPrincipalId", "always") in assignments
    assert ("Cognitive Services OpenAI User", "appPrincipalId", "always") in assignments
    assert ("Cognitive Services OpenAI User", "userPrincipalId", "!empty(userPrincipalId)") in (
        assignments
    )
    main_modules = parse("main.bicep")["modules"]
    app_identity = "identity.outputs.principalId"
    assert expr(body(main_modules["registry"])["params"]["pullPrincipalId"]) == app_identity
    assert expr(body(main_modules["openAiAccess"])["params"]["appPrincipalId"]) == app_identity


def test_no_output_carries_a_secret() -> None:
    for file in bicep_files():
        for name, output in parse(file).get("outputs", {}).items():
            assert not SECRET_LIKE.search(name), f"{file}: output {name}"
            assert not SECRET_LIKE.search(expr(output["value"])), f"{file}: output {name}"
            assert not any(d["type"] == "secure" for d in output["decorators"])


def test_every_app_variable_is_a_setting_or_a_documented_standard_one() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    env = app_env()
    assert env.keys() >= AZURE_REQUIRED
    assert env["CHAT_PROVIDER"] == "azure"
    for name in env:
        known = name in settings or name in STANDARD_VARIABLES or name.startswith("OTEL_")
        assert known, f"{name} is neither a Settings field nor a documented standard variable"


# What main.bicep passes the app module, as a deployment with every option on would.
DEPLOYED_URLS = {
    "databaseUrl": "postgresql+asyncpg://id-api-x@psql-x.postgres.database.azure.com:5432/"
    "chatbackend?ssl=require",
    "redisUrl": "rediss://redis-x.westeurope.redis.azure.net:10000/0",
}


def deployed_env(urls: dict[str, str]) -> dict[str, str]:
    """The app's variables with the store URLs given (empty: that store is not deployed);
    other expressions stand in for their values."""
    env = app_env()
    database_url = urls["databaseUrl"]
    assert env["DATABASE_URL"] == "empty(databaseUrl) ? sqliteUrl : databaseUrl"
    assert env["DATABASE_ENTRA_AUTH"] == "empty(databaseUrl) ? false : true"
    assert env["REDIS_URL"] == "redisUrl"
    assert env["REDIS_ENTRA_AUTH"] == "empty(redisUrl) ? false : true"
    env["DATABASE_URL"] = database_url or app_variable("sqliteUrl")
    env["DATABASE_ENTRA_AUTH"] = "true" if database_url else "false"
    env["REDIS_URL"] = urls["redisUrl"]
    env["REDIS_ENTRA_AUTH"] = "true" if urls["redisUrl"] else "false"
    return env


@pytest.mark.parametrize(
    "urls",
    [DEPLOYED_URLS, {"databaseUrl": "", "redisUrl": ""}],
    ids=["postgres-and-redis", "sqlite-in-memory"],
)
def test_the_app_definition_configures_keyless_azure(
    monkeypatch: pytest.MonkeyPatch, urls: dict[str, str]
) -> None:
    """settings.py, given the app's variables, picks Azure with the managed identity, API keys
    for callers, and the stores signed into with Entra tokens: no key or password anywhere."""
    for name, value in deployed_env(urls).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.provider == "azure"
    assert settings.azure_client_id == "identity.properties.clientId"
    assert settings.azure_openai_endpoint == "openAiEndpoint"
    assert settings.azure_openai_api_key is None
    assert settings.auth_mode == "api-key"
    assert settings.database_entra_auth is bool(urls["databaseUrl"])
    assert settings.redis_entra_auth is bool(urls["redisUrl"])
    assert (settings.redis_url is None) is not bool(urls["redisUrl"])


def test_main_builds_the_store_urls_the_app_expects() -> None:
    """Passwordless URLs: the role is the identity's name, TLS is required on both."""
    params = body(parse("main.bicep")["modules"]["app"])["params"]
    assert expr(params["databaseUrl"]) == (
        "enablePostgres ? postgresql+asyncpg://${identity.outputs.name}@"
        "${postgres.outputs.host}:5432/${databaseName}?ssl=require : "
    )
    assert expr(params["redisUrl"]) == (
        "enableRedis ? rediss://${redis.outputs.host}:${redis.outputs.port}/0 : "
    )
    variables = parse("main.bicep")["variables"]
    assert expr(variables["enableRedis"]["value"]) == "maxReplicas > 1"
    postgres_params = body(parse("main.bicep")["modules"]["postgres"])["params"]
    assert expr(postgres_params["appIdentityName"]) == "identity.outputs.name"
    assert expr(postgres_params["appPrincipalId"]) == "identity.outputs.principalId"
    redis_params = body(parse("main.bicep")["modules"]["redis"])["params"]
    assert expr(redis_params["appPrincipalId"]) == "identity.outputs.principalId"


def test_postgres_takes_entra_tokens_only() -> None:
    resources = parse("modules/postgres.bicep")["resources"]
    server = body(resources["server"])["properties"]
    assert plain(server["authConfig"]) == {
        "activeDirectoryAuth": "Enabled",
        "passwordAuth": "Disabled",
        "tenantId": "subscription().tenantId",
    }
    assert "administratorLogin" not in server
    assert "administratorLoginPassword" not in server
    admin = body(resources["appAdmin"])
    assert (
        resources["appAdmin"]["type"] == "Microsoft.DBforPostgreSQL/flexibleServers/administrators"
    )
    assert admin["name"] == "appPrincipalId"
    assert plain(admin["properties"]) == {
        "principalName": "appIdentityName",
        "principalType": "ServicePrincipal",
        "tenantId": "subscription().tenantId",
    }
    for file in bicep_files():
        for name in parse(file).get("parameters", {}):
            assert "password" not in name.lower(), f"{file}: {name}"


def test_postgres_allows_pgvector_and_azure_services() -> None:
    resources = parse("modules/postgres.bicep")["resources"]
    extensions = body(resources["extensions"])
    assert extensions["name"] == "azure.extensions"
    assert "VECTOR" in extensions["properties"]["value"].split(",")
    rule = body(resources["allowAzure"])["properties"]
    assert (rule["startIpAddress"], rule["endIpAddress"]) == ("0.0.0.0", "0.0.0.0")
    assert expr(body(resources["database"])["name"]) == "databaseName"


def test_redis_takes_entra_tokens_over_tls_only() -> None:
    resources = parse("modules/redis.bicep")["resources"]
    cluster = body(resources["cluster"])["properties"]
    assert cluster["minimumTlsVersion"] == "1.2"
    database = body(resources["database"])["properties"]
    assert database["accessKeysAuthentication"] == "Disabled"
    assert database["clientProtocol"] == "Encrypted"
    # A plain client (no cluster protocol) needs the single-endpoint policy.
    assert database["clusteringPolicy"] == "EnterpriseCluster"
    access = body(resources["appAccess"])["properties"]
    assert plain(access) == {"accessPolicyName": "default", "user": {"objectId": "appPrincipalId"}}
    main_modules = parse("main.bicep")["modules"]
    assert condition(main_modules["redis"]) == "enableRedis"
    assert condition(main_modules["postgres"]) == "enablePostgres"


def test_callers_need_an_api_key_in_azure() -> None:
    assert app_env()["AUTH_MODE"] == "api-key"


def test_probes_stay_within_the_container_apps_limits() -> None:
    for probe in app_container()["probes"]:
        assert 1 <= probe["failureThreshold"] <= 10, probe["type"]
        assert 1 <= probe["periodSeconds"] <= 240, probe["type"]


def test_target_port_matches_the_gunicorn_bind_and_the_probes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = app_variable("port")
    ingress = app_resource()["properties"]["configuration"]["ingress"]
    assert ingress["targetPort"] == "port"
    assert app_env()["PORT"] == "string(port)"
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == f"0.0.0.0:{port}"
    monkeypatch.setenv("PORT", str(port))
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == f"0.0.0.0:{port}"
    probes = {probe["type"]: probe["httpGet"] for probe in app_container()["probes"]}
    assert probes == {
        "Liveness": {"path": "/health/live", "port": "port"},
        "Readiness": {"path": "/health/ready", "port": "port"},
        "Startup": {"path": "/health/live", "port": "port"},
    }
    assert f"EXPOSE {port}" in (ROOT / "Dockerfile").read_text()


def test_streams_get_their_graceful_timeout_before_the_platform_kills_the_replica() -> None:
    assert app_env()["GRACEFUL_TIMEOUT"] == "string(gracefulTimeout)"
    grace = app_resource()["properties"]["template"]["terminationGracePeriodSeconds"]
    assert grace == "terminationGracePeriod"
    assert app_variable("gracefulTimeout") + 10 <= app_variable("terminationGracePeriod")


def test_scale_bounds_are_parameters_with_an_http_rule() -> None:
    scale = app_resource()["properties"]["template"]["scale"]
    assert (scale["minReplicas"], scale["maxReplicas"]) == ("minReplicas", "maxReplicas")
    assert [rule["name"] for rule in scale["rules"] if "http" in rule] == ["http-concurrency"]


def test_no_preview_api_versions() -> None:
    for file in bicep_files():
        for symbol, resource in parse(file).get("resources", {}).items():
            assert "preview" not in resource["api_version"], f"{file}: {symbol}"


def test_outputs_give_the_app_and_azd_what_they_need() -> None:
    outputs = parse("main.bicep")["outputs"]
    assert outputs.keys() >= {
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_DEPLOYMENT",
        "AZURE_CLIENT_ID",
        "AZURE_CONTAINER_REGISTRY_ENDPOINT",
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "SERVICE_API_URI",
    }


def test_azd_service_name_tags_the_container_app() -> None:
    services = yaml.safe_load((ROOT / "azure.yaml").read_text())["services"]
    assert list(services) == ["api"]
    assert expr(app_resource()["tags"]) == "union(tags, {azd-service-name: api})"
    assert services["api"]["host"] == "containerapp"
    assert services["api"]["docker"]["path"] == "Dockerfile"


def test_parameters_file_matches_main_bicep() -> None:
    declared = parse("main.bicep")["parameters"]
    supplied = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert supplied.keys() <= declared.keys()
    without_default = {name for name, p in declared.items() if p["default"] is None}
    assert without_default <= supplied.keys()
