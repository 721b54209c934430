#!/bin/bash
# Health of the router: HAProxy answers its monitor URI. bash's /dev/tcp: no curl in the image.
set -eu
exec timeout -s KILL 3 bash -c '
exec 3<>/dev/tcp/127.0.0.1/8404
printf "GET /healthz HTTP/1.0\r\n\r\n" >&3
read -r status <&3
case $status in *" 200 "*) exit 0 ;; *) echo "monitor answered: $status"; exit 1 ;; esac
'
