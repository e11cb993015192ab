import net from 'node:net';
import path from 'node:path';
import { removeTree, scratchDir } from '../../helpers/owned-dir.js';
import { startPluginProcess, type PluginProcess } from '../../helpers/plugin-process.js';
import { loopsUnder, runInstance, startTestCloud, type TestCloud } from '../localcloud/helpers.js';

import { asRoot } from '../../helpers/as-root.js';
import { call } from '../../unit/plugin/socket-client.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one sample line, e.g. `stowage_aws_calls_total{operation="AttachVolume",outcome="ok"}`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

asRoot('metrics of a running plugin', () => {
  let cloud: TestCloud;
  let dir: string;
  let plugin: PluginProcess | undefined;

  beforeAll(async () => {
    cloud = await startTestCloud();
    dir = await scratchDir('metrics');
  });

  afterAll(async () => {
    await plugin?.stop();
    await cloud?.close();
    if (dir) await removeTree(dir);
  });

  test('a scrape after a Mount shows the requests by endpoint and backing and the AWS calls by operation and outcome', async () => {
    const zone = 'us-east-1a';
    const instanceId = await runInstance(cloud, zone);
    const port = await freePort();
    const socket = path.join(dir, 'stowage.sock');
    plugin = await startPluginProcess({
      STOWAGE_BACKEND: 'local',
      STOWAGE_LOCALCLOUD_URL: cloud.lc.url,
      STOWAGE_LOCALCLOUD_DIR: cloud.lc.dir,
      STOWAGE_INSTANCE_ID: instanceId,
      STOWAGE_AZ: zone,
      STOWAGE_SOCKET: socket,
      STOWAGE_MOUNT_ROOT: path.join(dir, 'mnt'),
      STOWAGE_STATE_DIR: path.join(dir, 'state'),
      STOWAGE_DEFAULT_BACKING: 'relocatable',
      STOWAGE_METRICS_ADDR: `127.0.0.1:${port}`,
    });
    const url = `http://127.0.0.1:${port}/metrics`;
    expect(plugin.lines().some((l) => l.msg === 'metrics served' && l.url === url)).toBe(true);

    expect((await call(socket, '/VolumeDriver.Create', { Name: 'scraped', Opts: { size: '1' } })).status).toBe(200);
    const mounted = await call(socket, '/VolumeDriver.Mount', { Name: 'scraped', ID: 'm1' });
    expect(mounted.body.Err).toBe('');
    const text = await scrape(url);

    expect(sample(text, 'stowage_request_duration_seconds_count{endpoint="/VolumeDriver.Mount",backing="relocatable",outcome="ok"}')).toBe(1);
    expect(sample(text, 'stowage_request_duration_seconds_count{endpoint="/VolumeDriver.Create",backing="relocatable",outcome="ok"}')).toBe(1);
    expect(sample(text, 'stowage_aws_calls_total{operation="CreateVolume",outcome="ok"}')).toBe(1);
    expect(sample(text, 'stowage_aws_calls_total{operation="AttachVolume",outcome="ok"}')).toBe(1);
    expect(sample(text, 'stowage_aws_calls_total{operation="DescribeVolumes",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'stowage_mounts_in_flight{backing="relocatable"}')).toBe(0);
    expect(text).toContain('# TYPE stowage_aws_retries_total counter');

    // A failed request is counted as an error, with no backing reached.
    await call(socket, '/VolumeDriver.Mount', { Name: 'no such volume!', ID: 'm2' });
    expect(sample(await scrape(url), 'stowage_request_duration_seconds_count{endpoint="/VolumeDriver.Mount",backing="none",outcome="error"}')).toBe(1);

    expect((await call(socket, '/VolumeDriver.Unmount', { Name: 'scraped', ID: 'm1' })).status).toBe(200);
    expect((await call(socket, '/VolumeDriver.Remove', { Name: 'scraped' })).status).toBe(200);
    await plugin.stop();
    expect(loopsUnder(cloud.lc.dir)).toEqual([]);
  });
});
