#!/usr/bin/env python3
"""Brings the live cluster to the rendered Patroni configuration, at the least cost.

Runs beside Patroni on every node; only the node holding the leader lock acts, so the work
follows the primary through every failover. Each pass (every loop_wait):

1. The cluster-wide settings (bootstrap.dcs of this node's patroni.yml, which Patroni itself
   reads only once, at initialisation) are compared with Patroni's dynamic configuration and
   the difference is PATCHed: Patroni then reloads every member.
2. A setting PostgreSQL applies only at start leaves members with Patroni's pending_restart.
   Replicas restart first, one at a time, each only once every replica is streaming again; then
   the primary hands over to a streaming, restarted replica (a switchover); the old primary,
   now a replica, restarts on a later pass. A cluster with no replica restarts its primary.

Nothing happens while the cluster is paused (patronictl pause) or a member is not running.
"""
import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

import yaml

CONFIG_DIR = sys.argv[1] if len(sys.argv) > 1 else "/run/pg-ha/patroni"
CA_FILE = "/etc/pg-ha/tls/ca.crt"
# Patroni's own REST calls (restart, switchover) wait for the work they start.
REST_TIMEOUT_S = 180


def log(message):
    print(f"pg-ha rollout: {message}", file=sys.stderr, flush=True)


def merge(into, more):
    """Patroni's own rule for a configuration directory: later files extend earlier ones, key by key."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def load_config():
    merged = {}
    for name in sorted(os.listdir(CONFIG_DIR)):
        if name.endswith((".yml", ".yaml")):
            with open(os.path.join(CONFIG_DIR, name)) as f:
                merge(merged, yaml.safe_load(f) or {})
    return merged


class Rest:
    def __init__(self, config):
        auth = config["restapi"]["authentication"]
        token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        self.auth = f"Basic {token}"
        self.port = config["restapi"]["listen"].rsplit(":", 1)[1]
        self.context = ssl.create_default_context(cafile=CA_FILE)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3

    def call(self, method, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", self.auth)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=REST_TIMEOUT_S) as response:
                text = response.read().decode()
                status = response.status
        except urllib.error.HTTPError as e:
            text, status = e.read().decode(), e.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def local(self, method, path, body=None):
        return self.call(method, f"https://127.0.0.1:{self.port}{path}", body)


def same(a, b):
    """Values as Patroni may hand them back: 100, "100" and 100.0 are one setting."""
    if isinstance(a, dict) or isinstance(b, dict):
        return a == b
    norm = lambda v: str(v).lower() if not isinstance(v, float) or not v.is_integer() else str(int(v))
    return norm(a) == norm(b)


def dcs_patch(desired, current):
    """The PATCH that makes CURRENT equal DESIRED; parameters no longer rendered are removed."""
    patch = {}
    for key, value in desired.items():
        if key == "postgresql":
            continue
        if not same(value, current.get(key)):
            patch[key] = value
    want_pg, have_pg = desired.get("postgresql", {}), current.get("postgresql", {}) or {}
    pg_patch = {}
    for key, value in want_pg.items():
        if key == "parameters":
            continue
        if not same(value, have_pg.get(key)):
            pg_patch[key] = value
    want, have = want_pg.get("parameters", {}) or {}, have_pg.get("parameters", {}) or {}
    params = {k: v for k, v in want.items() if not same(v, have.get(k))}
    params.update({k: None for k in have if k not in want})
    if params:
        pg_patch["parameters"] = params
    if pg_patch:
        patch["postgresql"] = pg_patch
    return patch


def base_url(member):
    return member["api_url"].rsplit("/", 1)[0]


def one_pass(me, rest):
    status, cluster = rest.local("GET", "/cluster")
    if status != 200 or not isinstance(cluster, dict):
        return 0
    members = cluster.get("members", [])
    leader = next((m for m in members if m.get("role") == "leader"), None)
    if leader is None or leader["name"] != me or leader.get("state") != "running":
        return 0
    config = load_config()
    desired = (config.get("bootstrap") or {}).get("dcs") or {}
    status, current = rest.local("GET", "/config")
    if status == 200 and isinstance(current, dict):
        patch = dcs_patch(desired, current)
        if patch:
            status, answer = rest.local("PATCH", "/config", patch)
            log(f"cluster configuration: {json.dumps(patch, sort_keys=True)} -> {status}")
            return 5
    if cluster.get("pause"):
        return 0
    replicas = [m for m in members if m["name"] != me]
    if any(m.get("state") != "streaming" for m in replicas):
        return 0
    pending = [m for m in replicas if m.get("pending_restart")]
    if pending:
        target = sorted(pending, key=lambda m: m["name"])[0]
        log(f"restarting replica {target['name']} for settings PostgreSQL applies only at start")
        status, answer = rest.call("POST", f"{base_url(target)}/restart", {"restart_pending": True})
        log(f"restart of {target['name']}: {status} {answer}")
        return 5
    if not leader.get("pending_restart"):
        return 0
    if not replicas:
        log("restarting the primary, the only member, for settings PostgreSQL applies only at start")
        status, answer = rest.local("POST", "/restart", {"restart_pending": True})
        log(f"restart of {me}: {status} {answer}")
        return 5
    tagged_out = lambda m: (m.get("tags") or {}).get("nofailover")
    candidates = [m for m in replicas if not tagged_out(m)]
    synchronous = [m for m in candidates if m.get("role") in ("sync_standby", "quorum_standby")]
    candidate = sorted(synchronous or candidates, key=lambda m: (m.get("lag") if isinstance(m.get("lag"), int) else 1 << 62, m["name"]))
    if not candidate:
        return 0
    target = candidate[0]["name"]
    log(f"switching over to {target} so that {me} can restart for settings PostgreSQL applies only at start")
    status, answer = rest.local("POST", "/switchover", {"leader": me, "candidate": target})
    log(f"switchover to {target}: {status} {answer}")
    return 5


def main():
    config = load_config()
    me = config["name"]
    rest = Rest(config)
    interval = int(((config.get("bootstrap") or {}).get("dcs") or {}).get("loop_wait", 2))
    while True:
        try:
            extra = one_pass(me, rest)
        except Exception as e:  # a member down or restarting: try again on the next pass
            log(f"pass failed: {e}")
            extra = 5
        time.sleep(interval + extra)


if __name__ == "__main__":
    main()
