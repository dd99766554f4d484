#!/usr/bin/env bash
# System packages the test suite needs; installed only when missing (apt-get, as root in CI).
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
# The record store tests run against a throwaway PostgreSQL server (initdb + postgres).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The registry tests run against a throwaway Distribution registry (tests/shell/registries.py).
command -v docker-registry >/dev/null || need+=(docker-registry)
# The leader-election tests run replicas against a throwaway ZooKeeper (testbed/zookeeper.py).
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
# The signed-revision tests make keys and sign commits with a real gpg (tests/guard).
command -v gpg >/dev/null || need+=(gnupg)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]} (run this script as root to install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# Headless Chromium for the browser tests (tests/browser).
"$(dirname "$0")/install-browser-deps.sh"
