#!/usr/bin/env bash
# The demo (`make demo`): the seed walk-through on container hosts. A 3-node swarm from one file
# (1 manager, 2 workers, one with two NICs), an overlay network, a replicated service spread over
# the hosts, and a container on one host reaching a container on another by name.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MACHINE:-./bin/machine}
export MACHINE_STORAGE_PATH=${MACHINE_STORAGE_PATH:-$HOME/.machine-demo}
unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_MACHINE_NAME
FILE=testdata/cluster/demo.yml
IMG=machine-demo/busybox:1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the host image (built once, then reused while its recipe is unchanged)"
$M image build

step "a small image on the local engine (Debian's busybox-static), to side-load onto the hosts"
if ! docker -H unix:///var/run/docker.sock image inspect "$IMG" >/dev/null 2>&1; then
  tmp=$(mktemp -d); mkdir -p "$tmp/bin" "$tmp/tmp"; cp /bin/busybox "$tmp/bin/"
  for a in sh ping sleep nslookup hostname; do ln -s busybox "$tmp/bin/$a"; done
  tar -C "$tmp" -c . | docker -H unix:///var/run/docker.sock import -c 'CMD ["sh"]' - "$IMG" >/dev/null
  rm -rf "$tmp"
fi
echo "$IMG"

step "removing an earlier demo's cluster, if any"
$M swarm down -f "$FILE" >/dev/null 2>&1 || $M rm -f -y demo-manager demo-worker1 demo-worker2 >/dev/null 2>&1 || true

step "machine swarm up -f $FILE"
start=$(date +%s)
$M swarm up -f "$FILE"
echo "hosts created, provisioned, swarm formed, network made, image on every node in $(( $(date +%s) - start ))s"

step "machine ls"
$M ls

step "machine swarm status demo-manager"
$M swarm status demo-manager

step "demo-worker2 has two NICs; it advertises the one that reaches the manager"
$M ssh demo-worker2 "ip -o -4 addr show scope global | awk '\$2 !~ /^docker/ {print \$2, \$4}'"

step "a replicated service on the overlay network (this kernel has no IPVS: --endpoint-mode dnsrr)"
(
  eval "$($M env demo-manager)"
  docker service rm web >/dev/null 2>&1 || true
  docker service create --quiet --detach --name web --replicas 3 --endpoint-mode dnsrr --network app "$IMG" sleep 3600
  for _ in $(seq 1 60); do
    [ "$(docker service ps web --filter desired-state=running --format '{{.CurrentState}}' | grep -c Running)" = 3 ] && break
    sleep 1
  done
  docker service ps web --format 'table {{.Name}}\t{{.Node}}\t{{.CurrentState}}'
)

step "a container on demo-worker2 reaches one on demo-worker1 by name, across the overlay"
(
  eval "$($M env demo-worker1)"
  docker rm -f target >/dev/null 2>&1 || true
  docker run -d --name target --network app "$IMG" sleep 600 >/dev/null
)
(
  eval "$($M env demo-worker2)"
  docker run --rm --network app "$IMG" ping -c 2 -W 5 target
  echo
  echo "and the service's tasks by DNS:"
  docker run --rm --network app "$IMG" nslookup tasks.web | grep -A1 Name || true
)

echo
echo "Done. Try: eval \"\$(machine env demo-manager)\"; docker service ls   (store: $MACHINE_STORAGE_PATH)"
echo "Tear it down with: $M swarm down -f $FILE"
