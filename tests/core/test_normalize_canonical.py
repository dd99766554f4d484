"""Normalizing a canonical app changes nothing: the fast paths that keep values as they are
(instead of copying them) must still give Marathon's canonical form."""

from __future__ import annotations

import json

from reconciler.core import normalize as normalizing

LEGACY = {
    "id": "dirac/requestmanagement/executor/",
    "cmd": "dirac-agent RequestManagement/RequestExecutingAgent",
    "container": {"docker": {"image": "lhcbdirac:v8r2p44", "network": "BRIDGE",
                             "portMappings": [{"containerPort": 8080, "hostPort": None,
                                               "networkNames": []}]}},
    "constraints": [["zone", "LIKE", ""], ["hostname", "UNIQUE"]],
    "healthChecks": [{"protocol": "TCP"}, {"protocol": "MESOS_HTTP", "path": "/health"}],
    "uris": ["https://example.org/dirac.tar.gz"],
    "acceptedResourceRoles": ["slave_public", "*"],
    "dependencies": ["../configuration/server"],
    "version": "2024-03-04T10:11:12.131Z",
    "cpus": None,
}


def test_normalizing_is_idempotent() -> None:
    once = normalizing.normalize_app(LEGACY)
    twice = normalizing.normalize_app(once)
    assert json.dumps(twice, sort_keys=True) == json.dumps(once, sort_keys=True)


def test_legacy_fields_reach_the_canonical_form() -> None:
    normal = normalizing.normalize_app(LEGACY)
    assert normal["id"] == "/dirac/requestmanagement/executor"
    assert normal["networks"] == [{"mode": "container/bridge"}]
    assert normal["container"] == {
        "type": "DOCKER", "volumes": [],
        "docker": {"image": "lhcbdirac:v8r2p44", "forcePullImage": False, "privileged": False,
                   "parameters": []},
        "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp",
                          "servicePort": 0, "labels": {}}]}
    assert normal["constraints"] == [["hostname", "UNIQUE"], ["zone", "LIKE"]]
    assert [c["protocol"] for c in normal["healthChecks"]] == ["MESOS_HTTP", "TCP"]
    assert normal["fetch"] == [{"uri": "https://example.org/dirac.tar.gz", "extract": True,
                                "executable": False, "cache": False}]
    assert normal["acceptedResourceRoles"] == ["*", "slave_public"]
    assert normal["dependencies"] == ["/dirac/configuration/server"]
    assert normal["cpus"] == 1
    assert "version" not in normal and "uris" not in normal


def test_an_already_canonical_list_comes_back_equal_and_as_a_list() -> None:
    normal = normalizing.normalize_app({"id": "/a", "cmd": "x", "ports": [0]})
    assert normal["portDefinitions"] == [{"port": 0, "protocol": "tcp", "labels": {}}]
    host_default = normalizing.normalize_app({"id": "/a", "cmd": "x"})
    assert type(host_default["portDefinitions"]) is list
