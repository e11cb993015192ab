#!/usr/bin/env bash
# Assembles the managed plugin's root filesystem from this machine's own files: the node binary,
# the bundled app (dist/stowage.mjs), and the tools the host layer runs, each with
# the shared libraries it loads. This is the way to a plugin where no registry is reachable to build
# the Dockerfile; with a registry, build the image and use `scripts/build-plugin.sh --image`.
#
# The result is laid out as the Dockerfile's runtime image is (node at /usr/local/bin/node, the app
# in /opt/stowage), so config.json's entrypoint serves both.
#
# Usage: scripts/assemble-rootfs.sh OUT_DIR
#   OUT_DIR must not exist; it is written under a temporary name and renamed when complete, so a
#   reader (a cache) never sees half a rootfs.
# Needs: npm run build done (dist/stowage.mjs), npm (for the SBOM), ldd, and the tools below on this machine.
set -euo pipefail

usage() { echo "Usage: $0 OUT_DIR" >&2; exit 2; }
die() { echo "assemble-rootfs: $*" >&2; exit 1; }
[ $# -eq 1 ] || usage
OUT=$1
[ -e "$OUT" ] && die "$OUT already exists; remove it or pick another folder"

REPO=$(cd "$(dirname "$0")/.." && pwd)
NODE=${NODE:-$(command -v node)}
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What host/ runs: probe, format, check, mount, unmount; fuser names the holders of a busy mount.
REQUIRED_TOOLS=(blkid mkfs.ext4 e2fsck mkfs.xfs mount umount sync)
OPTIONAL_TOOLS=(fuser mount.nfs4)

[ -f "$REPO/dist/stowage.mjs" ] || die "$REPO/dist/stowage.mjs is missing: run npm run build first"
[ -x "$NODE" ] || die "no node binary at ${NODE:-(none on PATH)}"
command -v ldd >/dev/null || die "ldd is missing (Debian: libc-bin)"

PARTIAL="$OUT.partial.$$"
rm -rf "$PARTIAL"
trap 'rm -rf "$PARTIAL"' EXIT
mkdir -p "$PARTIAL"
R=$PARTIAL

# Keep this machine's merged-/usr layout (/lib -> usr/lib, …) so every path ldd prints resolves the
# same way inside the rootfs.
for d in bin sbin lib lib64; do
  if [ -L "/$d" ]; then
    target=$(readlink "/$d")
    case $target in /*) mkdir -p "$R$target" ;; *) mkdir -p "$R/$target" ;; esac
    ln -s "$target" "$R/$d"
  fi
done

# Copies a file to the same path in the rootfs: its real file, plus the symlink it was reached by.
copy_path() {
  local path=$1 real
  real=$(readlink -f "$path")
  if [ ! -e "$R$real" ]; then
    mkdir -p "$R$(dirname "$real")"
    cp -p "$real" "$R$real"
  fi
  if [ "$path" != "$real" ] && [ ! -e "$R$path" ]; then
    mkdir -p "$R$(dirname "$path")"
    ln -s "$real" "$R$path"
  fi
}

# The shared libraries a binary loads (ldd resolves the whole tree), the loader included.
copy_libraries() {
  local lib
  for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' || true); do
    copy_path "$lib"
  done
}

install_binary() {
  local from=$1 to=$2
  mkdir -p "$R$(dirname "$to")"
  cp -L "$from" "$R$to"
  copy_libraries "$from"
}

install_binary "$NODE" /usr/local/bin/node
for tool in "${REQUIRED_TOOLS[@]}"; do
  found=$(command -v "$tool") || die "$tool is missing on this machine (Debian: e2fsprogs, xfsprogs, util-linux, coreutils)"
  install_binary "$found" "$found"
done
for tool in "${OPTIONAL_TOOLS[@]}"; do
  if found=$(command -v "$tool"); then install_binary "$found" "$found"; fi
done
# mke2fs reads its defaults (ext4 features) from here; without it mkfs.ext4 falls back to old ones.
[ -f /etc/mke2fs.conf ] && install -D -m 0644 /etc/mke2fs.conf "$R/etc/mke2fs.conf"
# The AWS endpoints are HTTPS: the system's trust store, where this machine has one.
[ -f /etc/ssl/certs/ca-certificates.crt ] && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"

# The app: one bundle with its dependencies inside (scripts/bundle.mjs), so no node_modules.
install -D -m 0644 "$REPO/dist/stowage.mjs" "$R/opt/stowage/dist/stowage.mjs"
# The SBOM of what the bundle carries: the production dependencies, CycloneDX (as the Dockerfile).
(cd "$REPO" && npm sbom --omit dev --sbom-format cyclonedx --sbom-type application --package-lock-only) >"$R/opt/stowage/dist/sbom.cdx.json" \
  || die "npm sbom failed (npm 10 or later, and package-lock.json, are needed)"

# Mount points and the folders dockerd and the plugin expect; /tmp for anything that wants scratch.
mkdir -p "$R/proc" "$R/sys" "$R/dev" "$R/etc" "$R/run/docker/plugins" "$R/mnt/stowage" "$R/var/lib/stowage"
mkdir -m 1777 "$R/tmp"
touch "$R/etc/hosts" "$R/etc/resolv.conf"

trap - EXIT
mv "$PARTIAL" "$OUT"
echo "rootfs assembled in $OUT ($(du -sh "$OUT" | cut -f1))"
