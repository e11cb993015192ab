/**
 * STOWAGE_METRICS_ADDR as the operator writes it, through loadConfig to the listening socket: the
 * plugin runs on the host network, so a bare `:PORT` must not put the metrics on every interface.
 */
import net, { type AddressInfo } from 'node:net';
import { loadConfig } from '../../../plugin/config.js';
import { Metrics, type MetricsServer } from '../../../plugin/metrics.js';

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function served(addr: string): Promise<MetricsServer> {
  const config = loadConfig({ STOWAGE_METRICS_ADDR: addr });
  return new Metrics().listen(config.metricsAddr!);
}

test('a bare :PORT listens on 127.0.0.1 only', async () => {
  const port = await freePort();
  const server = await served(`:${port}`);
  try {
    expect(server.url).toBe(`http://127.0.0.1:${port}/metrics`);
    expect((await fetch(server.url)).status).toBe(200);
  } finally {
    await server.close();
  }
});

test('other interfaces only when a host is named', async () => {
  const port = await freePort();
  const server = await served(`0.0.0.0:${port}`);
  try {
    expect(server.url).toBe(`http://0.0.0.0:${port}/metrics`);
  } finally {
    await server.close();
  }
});
