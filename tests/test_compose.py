"""docker-compose.yml, checked without Docker: services, healthchecks, order, gateway settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from gateway.config import load_settings

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
REPLICAS = ("gateway-a", "gateway-b")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return dict(loaded["services"])


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's variables as Compose would pass them (`${NAME:-default}` → default)."""
    return {
        name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        for name, value in service["environment"].items()
    }


def test_two_replicas_postgresql_a_migration_and_a_reply_catcher(
    services: dict[str, Any],
) -> None:
    assert set(services) == {"postgres", "mailpit", "migrate", *REPLICAS}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["mailpit"]["image"].startswith("axllent/mailpit")


def test_gateways_run_the_image_built_from_the_repository(services: dict[str, Any]) -> None:
    for name in ("migrate", *REPLICAS):
        assert services[name]["build"] == "."
        assert "image" not in services[name]
        assert "volumes" not in services[name]  # the repository is in the image, not mounted


def test_nothing_is_installed_when_a_gateway_starts(services: dict[str, Any]) -> None:
    for name in ("migrate", *REPLICAS):
        started = [*services[name].get("entrypoint", []), *services[name]["command"]]
        assert not any("pip" in part or "install" in part for part in started)


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["mailpit"]["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]
    for name in REPLICAS:
        check = services[name]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"]
        assert "http://127.0.0.1:8025/healthz" in check[3]
        assert services[name]["healthcheck"]["start_period"] == "20s"  # nothing to install
    assert "healthcheck" not in services["migrate"]  # a one-shot job


def test_only_the_migration_upgrades_and_the_replicas_wait_for_it(
    services: dict[str, Any],
) -> None:
    assert services["migrate"]["command"] == ["db", "upgrade"]  # after the image's `mail2sms`
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in REPLICAS:
        assert services[name]["command"] == ["serve"]
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "mailpit": {"condition": "service_healthy"},
        }


def test_replicas_share_the_postgres_service_and_relay_to_the_catcher(
    services: dict[str, Any],
) -> None:
    postgres = services["postgres"]["environment"]
    urls = set()
    for name in ("migrate", *REPLICAS):
        settings = load_settings(environ=_environment(services[name]))
        url = make_url(settings.database.url)
        assert (url.drivername, url.host, url.port) == ("postgresql+asyncpg", "postgres", 5432)
        assert (url.username, url.password, url.database) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        )
        urls.add(settings.database.url)
        assert (settings.relay.host, settings.relay.port) == ("mailpit", 1025)
        assert (settings.smtp.host, settings.http.host) == ("0.0.0.0", "0.0.0.0")
        assert settings.http.admin_token  # required off loopback, or `serve` stops
    assert len(urls) == 1


def test_replicas_publish_distinct_host_ports(services: dict[str, Any]) -> None:
    published = [port for name in REPLICAS for port in services[name]["ports"]]
    published += services["mailpit"]["ports"]
    host_sides = [port.rsplit(":", 1)[0] for port in published]
    assert len(set(host_sides)) == len(host_sides)
    assert all(side.startswith("127.0.0.1:") for side in host_sides)
