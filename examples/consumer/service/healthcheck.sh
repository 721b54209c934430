#!/bin/bash
# The container's health check: GET /healthz through bash's /dev/tcp. Starting node for this would
# take seconds on a busy host; bash takes milliseconds, and `timeout 3` in the health check's
# command ends it well inside the check's own 10 s timeout.
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r status <&3
[[ $status == "HTTP/1.1 200 "* ]]
