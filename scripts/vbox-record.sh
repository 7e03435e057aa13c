#!/usr/bin/env bash
# Records again, from a real VirtualBox (the image of scripts/vbox-image.sh), the VBoxManage
# outputs in drivers/virtualbox/testdata/vboxmanage that drivers/virtualbox/testdata/record.sh
# makes; the hand-written ones (they need a running VM) are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
image=$(bash scripts/vbox-image.sh)
name=machine-vbox-record-$$
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$name" --cap-add NET_ADMIN "$image" sleep infinity >/dev/null
docker cp drivers/virtualbox/testdata/record.sh "$name":/record.sh
docker exec "$name" bash /record.sh /recorded
docker cp "$name":/recorded/. drivers/virtualbox/testdata/vboxmanage/
