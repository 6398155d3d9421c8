"""What ``portway serve`` gets from sources.wiring for the Toolforge settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.errors import ConfigError
from portway.router import Snapshot
from portway.runtime.config import ServeConfig
from portway.runtime.configfile import build
from portway.runtime.settings import SETTINGS
from portway.service import Service
from portway.sources.wiring import build_sources, toolforge_domains
from portway.store import open_store


def config(**values: object) -> ServeConfig:
    defaults = {s.key: s.default for s in SETTINGS}
    return build({**defaults, **values}, {})  # type: ignore[dict-item]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    store = open_store(f"sqlite:///{tmp_path / 'portway.db'}")
    yield Service(store)
    store.close()


def test_nothing_configured_means_no_sources_and_no_tool_routing(service: Service) -> None:
    assert toolforge_domains(config()) is None
    assert build_sources(config(), service).states() == {}


def test_every_toolforge_part_is_built_from_its_settings(service: Service) -> None:
    values = config(
        toolforge_canonical_domain="toolforge.org",
        toolforge_legacy_domain="tools.wmflabs.org",
        toolforge_default_backend="http://10.0.0.1:30000",
        toolforge_listen="127.0.0.1:8282",
        toolforge_list="127.0.0.1:8081",
        kubernetes_api="https://k8s.example.org:6443",
        https="127.0.0.1:8443",
    )
    domains = toolforge_domains(values)
    assert domains is not None and domains.legacy == "tools.wmflabs.org" and domains.https
    assert domains.default is not None and domains.default.backends[0].port == 30000
    sources = build_sources(values, service, snapshot=lambda: Snapshot(version=0))
    assert set(sources.states()) == {"toolforge", "kubernetes", "toolforge-list"}


@pytest.mark.parametrize(
    "values",
    [
        {"toolforge_listen": "127.0.0.1:8282"},  # without the canonical domain
        {"kubernetes_api": "https://k8s.example.org"},
        {"toolforge_canonical_domain": "toolforge.org", "toolforge_default_backend": "ftp://x:1"},
        {"toolforge_canonical_domain": "toolforge.org", "kubernetes_api": "ftp://x"},
        {"toolforge_user_prefix": "tools.x"},
    ],
)
def test_bad_combinations_stop_the_start(service: Service, values: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        cfg = config(**values)
        toolforge_domains(cfg)
        build_sources(cfg, service)
