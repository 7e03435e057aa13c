#!/usr/bin/env bash
# Installs and starts what `make demo` and `make test` need on a fresh Debian machine (as root):
# a local Docker engine (Debian's docker.io), debootstrap for offline host images, and the tools
# the tests call. Safe to run again: it only does what is missing.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v ssh >/dev/null 2>&1 || need_pkgs+=(openssh-client)
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v rsync >/dev/null 2>&1 || need_pkgs+=(rsync)
# The shells `machine env` prints for, to evaluate its output in (FuzzEnvRoundTrip).
for sh in fish zsh tcsh; do command -v $sh >/dev/null 2>&1 || need_pkgs+=($sh); done
command -v isoinfo >/dev/null 2>&1 || need_pkgs+=(genisoimage)
command -v sshfs >/dev/null 2>&1 || need_pkgs+=(sshfs)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need_pkgs[*]}: run this script as root (it installs them with apt-get)"; exit 1
  fi
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Start dockerd when no engine answers (PID 1 is not systemd on these machines).
if ! docker version >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker version >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
log "docker engine $(docker version --format '{{.Server.Version}}') is up"

# Many container hosts at once: every host's systemd and dockerd take inotify instances out of one
# per-user budget (128 by default); past it, a new host's systemd exits as it boots. Raise the
# limits the way kind's documentation does, when they are lower.
# The kernel's neighbour (ARP/NDP) table is one for all network namespaces, 1024 entries by
# default: the hosts' nested bridges and overlay networks fill it at about 50 hosts, and then hosts
# drop off the network ("neighbour: arp_cache: neighbor table overflow!" in dmesg).
for kv in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288 \
  net.ipv4.neigh.default.gc_thresh1=4096 net.ipv4.neigh.default.gc_thresh2=16384 net.ipv4.neigh.default.gc_thresh3=32768 \
  net.ipv6.neigh.default.gc_thresh1=4096 net.ipv6.neigh.default.gc_thresh2=16384 net.ipv6.neigh.default.gc_thresh3=32768; do
  k=${kv%=*} v=${kv#*=}
  cur=$(sysctl -n "$k" 2>/dev/null || echo 0)
  if [ "$cur" -lt "$v" ]; then
    sysctl -qw "$kv" || { log "could not raise $k from $cur to $v: run as root, or tests with many hosts fail"; exit 1; }
    log "raised $k from $cur to $v"
  fi
done
