"""portway quota show / set: the requests sent and what is printed."""

from __future__ import annotations

import json

QUOTA = {
    "project": "alpha",
    "limits": {"proxies": 5, "backends_per_proxy": -1, "certificates": 2, "cache_bytes": -1},
    "own": {"proxies": 5, "backends_per_proxy": None, "certificates": None, "cache_bytes": None},
    "in_use": {"proxies": 3, "backends_per_proxy": 1, "certificates": 0},
}


def test_quota_show_is_one_row_per_quota(api, cli):
    api.reply("GET", "/v1/quotas/alpha", 200, {"quota": QUOTA})
    result = cli("quota", "show", "alpha")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["QUOTA", "LIMIT", "OWN", "IN_USE"]
    assert lines[1].split()[:4] == ["proxies", "5", "5", "3"]
    assert lines[2].split()[:2] == ["backends_per_proxy", "-1"]


def test_quota_set_keeps_the_values_not_given_and_resets_default(api, cli):
    api.reply("GET", "/v1/quotas/alpha", 200, {"quota": QUOTA})
    api.reply("PUT", "/v1/quotas/alpha", 200, {"quota": QUOTA})
    result = cli(
        "quota", "set", "alpha", "--certificates", "10", "--proxies", "default", "-f", "json"
    )
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "PUT"
    assert api.last.body == {
        "quota": {
            "proxies": None,
            "backends_per_proxy": None,
            "certificates": 10,
            "cache_bytes": None,
        }
    }
    assert json.loads(result.stdout)["project"] == "alpha"


def test_quota_set_refuses_a_value_that_is_not_a_number(api, cli):
    api.reply("GET", "/v1/quotas/alpha", 200, {"quota": QUOTA})
    result = cli("quota", "set", "alpha", "--proxies", "many")
    assert result.exit_code != 0
    assert "many" in result.stderr
