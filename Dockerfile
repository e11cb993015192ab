# The managed plugin's rootfs is this image's filesystem (see docs and scripts for `docker plugin create`).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY plugin plugin
COPY drivers drivers
COPY snapshot snapshot
COPY aws aws
COPY host host
COPY localcloud localcloud
COPY cli cli
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux nfs-common \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/stowage
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
RUN mkdir -p /run/docker/plugins /mnt/stowage /var/lib/stowage
ENTRYPOINT ["/usr/local/bin/node", "/opt/stowage/dist/cli/main.js", "plugin"]
