#!/usr/bin/env bash
# Turns a root filesystem plus config.json into a managed Docker plugin: `docker plugin create`.
#
# Usage: scripts/build-plugin.sh [--name NAME] [--sbom FILE] (--image IMAGE | --rootfs DIR | --from-host)
#   --name NAME    plugin name (default stowage/aws); push it with `docker plugin push NAME`
#   --sbom FILE    where to put a copy of the plugin's SBOM (default stowage-plugin.cdx.json here)
#   --image IMAGE  the filesystem of a built image: docker build -t stowage-rootfs . (the Dockerfile)
#   --rootfs DIR   a root filesystem already assembled (scripts/assemble-rootfs.sh)
#   --from-host    assemble one now from this machine's files: no registry needed
#
# The SBOM (CycloneDX, /opt/stowage/dist/sbom.cdx.json inside the plugin) lists the npm packages the
# bundle carries; the Dockerfile and assemble-rootfs.sh make it with the app, and a rootfs without
# one is refused, so every plugin made here ships with its SBOM.
#
# The docker client comes from $DOCKER (default: docker on PATH) and honours DOCKER_HOST, so the
# plugin can be made on any daemon. The plugin is created disabled: set it, then enable it:
#   docker plugin set stowage/aws STOWAGE_CLUSTER=prod
#   docker plugin enable --timeout 120 stowage/aws
set -euo pipefail

usage() { sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "build-plugin: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
DOCKER=${DOCKER:-docker}
NAME=stowage/aws
SBOM=$PWD/stowage-plugin.cdx.json
SOURCE=
FROM=
while [ $# -gt 0 ]; do
  case $1 in
    --name) [ $# -ge 2 ] || usage; NAME=$2; shift 2 ;;
    --sbom) [ $# -ge 2 ] || usage; SBOM=$2; shift 2 ;;
    --image|--rootfs) [ $# -ge 2 ] && [ -z "$SOURCE" ] || usage; SOURCE=${1#--}; FROM=$2; shift 2 ;;
    --from-host) [ -z "$SOURCE" ] || usage; SOURCE=host; shift ;;
    -h|--help) usage ;;
    *) echo "build-plugin: unexpected argument $1" >&2; usage ;;
  esac
done
[ -n "$SOURCE" ] || usage

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stowage-plugin-XXXXXX")
CONTAINER=
cleanup() {
  [ -z "$CONTAINER" ] || "$DOCKER" rm -f "$CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cp "$REPO/config.json" "$WORK/config.json"

case $SOURCE in
  image)
    CONTAINER=$("$DOCKER" create "$FROM") || die "cannot create a container from image $FROM"
    mkdir "$WORK/rootfs"
    "$DOCKER" export "$CONTAINER" | tar -x -C "$WORK/rootfs" || die "cannot export the filesystem of $FROM"
    ;;
  rootfs)
    [ -x "$FROM/usr/local/bin/node" ] || die "$FROM does not look like a Stowage rootfs (no /usr/local/bin/node)"
    # Hard links where the folders share a filesystem: the rootfs is only read from here on.
    cp -al "$FROM" "$WORK/rootfs" 2>/dev/null || { rm -rf "$WORK/rootfs"; cp -a "$FROM" "$WORK/rootfs"; }
    ;;
  host)
    "$REPO/scripts/assemble-rootfs.sh" "$WORK/rootfs"
    ;;
esac

ROOTFS_SBOM=$WORK/rootfs/opt/stowage/dist/sbom.cdx.json
grep -q '"bomFormat": "CycloneDX"' "$ROOTFS_SBOM" 2>/dev/null \
  || die "the rootfs has no SBOM at /opt/stowage/dist/sbom.cdx.json: build it with the Dockerfile or scripts/assemble-rootfs.sh"
"$DOCKER" plugin create "$NAME" "$WORK" >/dev/null || die "docker plugin create $NAME failed"
cp "$ROOTFS_SBOM" "$SBOM"
echo "plugin $NAME created (disabled), its SBOM copied to $SBOM; next: docker plugin set $NAME KEY=VALUE …, then docker plugin enable --timeout 120 $NAME"
