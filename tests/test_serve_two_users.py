"""``serve`` with the two-user model of ``prime-db``: migrations run as ``migrationUser``, the pool
(reads and the sync's writes) connects as the application ``user``, on a private server that asks
every role but postgres for a SCRAM password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from api_fixtures import make_env, seed_servers
from serving import running, write_registry
from test_prime_db import MIGRATOR_PASSWORD, Cluster, Scene, new_scene, start_cluster
from thv_registry.db.prime import prime

APP_PASSWORD = "s3rve-äpp"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from start_cluster()


@pytest.fixture
def scene(cluster: Cluster) -> Iterator[Scene]:
    with new_scene(cluster) as made:
        yield made


def test_serve_migrates_as_the_migrator_and_serves_as_the_app_user(
    scene: Scene, tmp_path: Path
) -> None:
    prime(scene.migration_params(), "app", APP_PASSWORD)
    registry = write_registry(tmp_path / "registry.json", seed_servers())
    config = {
        "database": {
            "host": scene.cluster.socket_dir,
            "port": scene.cluster.port,
            "user": "app",
            "password": APP_PASSWORD,
            "migrationUser": scene.migrator,
            "migrationPassword": MIGRATOR_PASSWORD,
            "database": scene.database,
            "sslmode": "disable",
        },
        "auth": {"mode": "anonymous"},
        "sources": [
            {"name": "local", "file": {"path": str(registry)}, "syncPolicy": {"interval": "1m"}}
        ],
        "registries": [{"name": "default", "sources": ["local"]}],
        "server": {"address": "127.0.0.1:0", "internalAddress": "127.0.0.1:0"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    env = make_env(tmp_path)
    env.pop("PGPASSWORD", None)
    with running(path, env, tmp_path) as process:
        listed = httpx.get(f"{process.base}/registry/default/v0.1/servers", timeout=5).json()
        assert listed["metadata"]["count"] > 0  # the sync wrote as app, the store read as app
        sessions = scene.cluster.query(
            "SELECT DISTINCT usename FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'thv-registry-api serve'",
            scene.database,
        )
        assert sessions == [("app",)]
        owners = scene.cluster.query(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
            dbname=scene.database,
        )
        assert owners == [(scene.migrator,)]
        assert APP_PASSWORD not in process.stderr and MIGRATOR_PASSWORD not in process.stderr
