#!/usr/bin/env bash
# Builds (once per recipe) the image with a real VirtualBox in it (Debian sid's contrib) and
# prints its tag. The tag is named by the hash of the recipe; about 3.5 minutes to build.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=drivers/virtualbox/testimage/build.sh
tag=machine-vbox:$(sha256sum "$recipe" | cut -c1-12)
mkdir -p /var/cache/machine-test
exec 9>/var/cache/machine-test/.vbox-build.lock
flock 9
if ! docker image inspect "$tag" >/dev/null 2>&1; then
  echo "building $tag (a real VirtualBox from Debian sid's contrib), about 3.5 minutes" >&2
  bash "$recipe" "$tag" "${MACHINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  # Earlier recipes' images are no longer needed.
  docker images --format '{{.Repository}}:{{.Tag}}' machine-vbox | grep -vx "$tag" | xargs -r docker rmi >/dev/null 2>&1 || true
fi
echo "$tag"
