#!/bin/sh
# Health of an etcd member: it answers a linearizable read over TLS with its own client certificate.
set -eu
exec timeout -s KILL 3 etcdctl --endpoints=https://127.0.0.1:2379 --dial-timeout=2s --command-timeout=2s \
  --cacert=/etc/pg-ha/tls/ca.crt --cert=/etc/pg-ha/tls/etcd.crt --key=/etc/pg-ha/secrets/etcd.key \
  endpoint health
