#!/bin/sh
# PgBouncer is healthy when it listens on 6432 (0x1920, state 0A = LISTEN). Logging in would need
# a password in the health check, which would then sit in the container's configuration.
# Bounded like every health check, below the healthcheck's timeout (see postgres-health.sh).
timeout -s KILL 1 grep -q ':1920 [0-9A-F:]* 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "not listening on 6432"; exit 1; }
