#!/usr/bin/env bash
# The demo: three container hosts made at once, each a TLS-secured Docker host that the plain
# docker CLI reaches through `machine env`. Run by `make demo` after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MACHINE:-./bin/machine}
export MACHINE_STORAGE_PATH=${MACHINE_STORAGE_PATH:-$HOME/.machine-demo}
unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_MACHINE_NAME
nodes=(demo1 demo2 demo3)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the host image (built once, then reused while its recipe is unchanged)"
$M image build

step "removing an earlier demo's hosts, if any"
$M rm -f -y "${nodes[@]}" 2>/dev/null || true

step "creating ${nodes[*]} at the same time"
start=$(date +%s)
pids=()
for n in "${nodes[@]}"; do $M create "$n" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
echo "three hosts created and provisioned in $(( $(date +%s) - start ))s"

step "machine ls"
$M ls

for n in "${nodes[@]}"; do
  step "eval \"\$(machine env $n)\" && docker info"
  (
    eval "$($M env "$n")"
    echo "DOCKER_HOST=$DOCKER_HOST"
    docker info --format 'Name: {{.Name}}  Server: {{.ServerVersion}}  Storage: {{.Driver}}  Labels: {{.Labels}}'
  )
done

step "the hosts reach each other"
$M ssh demo1 ping -c 1 -W 3 "$($M ip demo2)" | tail -2

echo
echo "Done. Try: eval \"\$(machine env demo1)\"; docker ps    (store: $MACHINE_STORAGE_PATH)"
echo "Clean up with: $M rm -y ${nodes[*]}"
