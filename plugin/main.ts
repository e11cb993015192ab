import type { Server } from 'node:http';
import type { Driver } from '../drivers/driver.js';
import { readMountinfo } from '../host/mountinfo.js';
import type { Config } from './config.js';
import type { Logger } from '../core/log.js';
import type { Metrics, MetricsServer } from './metrics.js';
import type { Backing } from '../core/volume-options.js';
import { RefcountStore } from './refcounts.js';
import { createProtocolHandler, listenOnSocket } from './server.js';
import { VolumeService } from './volume-service.js';

export interface PluginOptions {
  config: Config;
  drivers: Driver[];
  log: Logger;
  unavailableBackings?: Partial<Record<Backing, string>>;
  /** Whether something is mounted at a path; the kernel's mountinfo unless a test says otherwise. */
  isMounted?: (mountpoint: string) => Promise<boolean>;
  /** Served on config.metricsAddr; requests are timed and the drivers instrumented. */
  metrics?: Metrics;
}

export interface RunningPlugin {
  socket: string;
  service: VolumeService;
  /**
   * Stops taking requests, gives those in flight up to graceMs (default 0) to answer, then
   * closes every connection. Background work is not waited for: it resumes from tags at the next start.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

async function mountedInKernel(mountpoint: string): Promise<boolean> {
  return (await readMountinfo()).some((m) => m.target === mountpoint);
}

/**
 * Restores the mount references, then serves the protocol. Nothing here talks to AWS: dockerd
 * gives a plugin about 12 s to open its socket, so the cloud is reached lazily by the drivers.
 */
export async function startPlugin(options: PluginOptions): Promise<RunningPlugin> {
  const { config, log, metrics } = options;
  const drivers = metrics ? options.drivers.map((d) => metrics.instrument(d)) : options.drivers;
  const refcounts = new RefcountStore(config.stateDir, log);
  await refcounts.load(options.isMounted ?? mountedInKernel);
  const service = new VolumeService({
    drivers,
    refcounts,
    log,
    defaultBacking: config.defaultBacking,
    cost: config.cost,
    lifecycle: config.lifecycle,
    mountTimeoutMs: config.mountTimeoutMs,
    ...(options.unavailableBackings && { unavailableBackings: options.unavailableBackings }),
  });
  const server: Server = await listenOnSocket(createProtocolHandler(service, log, metrics?.trackRequest), config.socket);
  log.info({ socket: config.socket, backings: drivers.map((d) => d.backing), cluster: config.cluster }, 'plugin listening');
  let metricsServer: MetricsServer | undefined;
  if (metrics && config.metricsAddr) {
    metricsServer = await metrics.listen(config.metricsAddr);
    log.info({ url: metricsServer.url }, 'metrics served');
  }
  return {
    socket: config.socket,
    service,
    close: async ({ graceMs = 0 } = {}) => {
      await metricsServer?.close();
      service.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      await closed;
    },
  };
}
