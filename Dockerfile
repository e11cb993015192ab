# The managed plugin's root filesystem is this image's filesystem:
#   docker build -t stowage-rootfs . && scripts/build-plugin.sh --image stowage-rootfs --name stowage/aws
# Where no registry is reachable, scripts/assemble-rootfs.sh lays out the same tree from local files.
#
# The base is Node 24 (LTS; Node 20 reached end of life in April 2026) pinned by the digest of its
# multi-arch index, because a tag can be re-pointed and a digest cannot. This digest was taken from
# public Dockerfiles that pin node:24-bookworm-slim (24.18.0), not from the registry: check it, and
# move to a newer one, with `docker buildx imagetools inspect node:24-bookworm-slim` (its `Digest:`
# line), then change the default here or build with --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:….
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# Build: dev dependencies to compile and bundle; the bundle carries its production dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: `prepare` would build before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build
# The SBOM of what the bundle carries: the production dependencies, CycloneDX (as assemble-rootfs.sh).
RUN npm sbom --omit dev --sbom-format cyclonedx --sbom-type application > dist/sbom.cdx.json

# Runtime: node, the app, and the tools host/ runs (blkid, mkfs.ext4, e2fsck, mkfs.xfs, mount, umount,
# sync, fuser; mount.nfs4 for NFS and EFS). npm and yarn are not needed to run the plugin.
FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux mount psmisc nfs-common ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /usr/share/locale \
           /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production
WORKDIR /opt/stowage
COPY --from=build /src/dist/stowage.mjs /src/dist/sbom.cdx.json dist/
# Mount points of config.json (PropagatedMount, state) and dockerd's socket folder.
RUN mkdir -p /run/docker/plugins /mnt/stowage /var/lib/stowage
ENTRYPOINT ["/usr/local/bin/node", "/opt/stowage/dist/stowage.mjs", "plugin"]
