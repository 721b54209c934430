#!/usr/bin/env bash
# Prepare this machine to build the local test images and run the e2e tests:
#   - install every package tests/images/host-packages.txt names (docker.io, debootstrap,
#     busybox-static, postgresql-client, ...) from Debian's own packages when it is missing
#     (no container registry and no third-party repository is needed or used);
#   - start dockerd in the background when no engine answers;
#   - wait, bounded, until `docker info` answers.
# Idempotent: on a machine that is already set up it only checks and exits 0.
# Must run as root (apt-get, dockerd).
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT_SECONDS=${DOCKER_WAIT_SECONDS:-60}

say() { echo "[setup-engine] $*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "must run as root (installs packages and starts dockerd)" >&2
  exit 1
fi

# --- 1. packages -----------------------------------------------------------
# Map "command we need" -> "Debian package that provides it", and only touch
# apt when something is actually missing (apt-get update is slow and needs the
# network; a second run must stay a fast no-op).
missing=()
need() { # need COMMAND PACKAGE
  if ! command -v "$1" >/dev/null 2>&1; then
    missing+=("$2")
  fi
}
while read -r command package; do
  case $command in '' | '#'*) continue ;; esac
  need "$command" "$package"
done < "$(dirname "$0")/host-packages.txt"
# busybox-static, not busybox: the executor's self-test image copies the binary into an empty
# root file system, so a dynamically linked busybox would not run there.
if command -v file >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1 \
  && file -L "$(command -v busybox)" | grep -q "dynamically linked"; then missing+=(busybox-static); fi
# debootstrap only *recommends* the keyring; without it the Release files of
# the suites it downloads would not be signature-checked.
[ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)

if [ "${#missing[@]}" -gt 0 ]; then
  # de-duplicate the package list
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # With recommends on purpose: this is the combination known to work here
  # (docker.io recommends cgroupfs-mount, ca-certificates, xz-utils, ...;
  # debootstrap recommends gnupg/gpgv and arch-test).
  apt-get install -y -q "${pkgs[@]}"
else
  say "packages already present: every command in host-packages.txt"
fi

# --- 2. engine ----------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "docker engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  exit 0
fi

# Only start a daemon when none is running; a second dockerd on the same
# /var/lib/docker would fail (and could corrupt state).
# (/proc scan instead of pgrep: procps is not guaranteed on a minimal system)
dockerd_running() {
  local c
  for c in /proc/[0-9]*/comm; do
    [ "$(cat "$c" 2>/dev/null)" = dockerd ] && return 0
  done
  return 1
}
if dockerd_running; then
  say "dockerd process exists but does not answer yet; waiting for it"
else
  say "starting dockerd in the background (log: $DOCKERD_LOG)"
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid + nohup: detach from this script's session and terminal so the
  # daemon outlives the script and is not hit by the caller's SIGHUP/SIGINT.
  setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + WAIT_SECONDS))
until docker info >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "docker engine did not answer within ${WAIT_SECONDS}s; last lines of $DOCKERD_LOG:" >&2
    tail -n 40 "$DOCKERD_LOG" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 1
done
say "docker engine answers ($(docker version --format '{{.Server.Version}}'))"
