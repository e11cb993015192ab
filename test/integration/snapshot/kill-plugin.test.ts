import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DescribeVolumesCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { CallCounter } from '../../../aws/call-counter.js';
import { createAwsClients } from '../../../aws/clients.js';
import { delay } from '../../../core/delay.js';
import { createEbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { startLocalcloud, type Localcloud } from '../../../localcloud/index.js';
import { silentLogger } from '../../../core/log.js';
import { startPluginProcess, type PluginProcess } from '../../helpers/plugin-process.js';
import { loopsUnder } from '../localcloud/helpers.js';

import { asRoot } from '../../helpers/as-root.js';
import { gp3Options } from '../../helpers/volume-options.js';

const [A, B] = ['us-east-1a', 'us-east-1b'];
const OPTIONS = gp3Options(1);

function call(socket: string, method: string, body: object): Promise<{ Err?: string; Mountpoint?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: `/VolumeDriver.${method}`, method: 'POST' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(JSON.parse(text) as { Err?: string; Mountpoint?: string }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

asRoot('kill -9 of the plugin process in the middle of a cross-zone move', () => {
  let dir: string;
  let lc: Localcloud;
  let ec2: EC2Client;
  let plugin: PluginProcess | undefined;
  const mountRoot = () => path.join(dir, 'mnt-b');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-xz-kill-'));
    lc = await startLocalcloud({ dir: path.join(dir, 'cloud'), latency: 'zero', zones: [A!, B!] });
    ec2 = createAwsClients({ region: lc.region, endpointUrl: lc.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }).ec2;
  });

  afterAll(async () => {
    await plugin?.stop();
    const host = createLinuxHost({ deviceDir: dir });
    for (const m of await host.mounts()) if (m.target.startsWith(dir)) await host.unmount(m.target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch(() => undefined);
    ec2?.destroy();
    await lc?.stop({ release: true });
    expect(loopsUnder(dir)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  test('killed while the snapshot is pending, restarted: the next Mount completes; one volume, no orphan', async () => {
    const ids: string[] = [];
    for (const zone of [A!, B!]) {
      const run = await ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-12345678', Placement: { AvailabilityZone: zone } }));
      ids.push(run.Instances![0]!.InstanceId!);
    }
    await delay(200);
    // Written in zone a by an in-process node.
    const a = createEbsDriver({
      ec2, host: createLinuxHost({ deviceDir: lc.deviceDir(ids[0]!) }), counter: new CallCounter(), log: silentLogger,
      identity: { instanceId: ids[0]!, zone: A!, region: 'us-east-1' }, cluster: 'kill', mountRoot: path.join(dir, 'mnt-a'), fenceAfterMs: 60_000, pollInitialMs: 20,
    });
    const ctx = { deadline: Date.now() + 30_000, log: silentLogger };
    await a.create('db1', OPTIONS, ctx);
    const data = randomBytes(3 * 1024 * 1024);
    await writeFile(path.join(await a.mount('db1', ctx), 'data.bin'), data);
    await a.unmount('db1', ctx);

    await lc.setFaults({ slowSnapshotMs: 6000 });
    const socket = path.join(dir, 'b.sock');
    plugin = await startPluginProcess({
      STOWAGE_BACKEND: 'local', STOWAGE_LOCALCLOUD_URL: lc.url, STOWAGE_LOCALCLOUD_DIR: path.join(dir, 'cloud'),
      STOWAGE_INSTANCE_ID: ids[1]!, STOWAGE_AZ: B!, STOWAGE_SOCKET: socket, STOWAGE_MOUNT_ROOT: mountRoot(),
      STOWAGE_STATE_DIR: path.join(dir, 'state-b'), STOWAGE_CLUSTER: 'kill', STOWAGE_MOUNT_TIMEOUT: '2s', STOWAGE_SNAPSHOT_ON_UNMOUNT: 'false',
    });
    const first = await call(socket, 'Mount', { Name: 'db1', ID: 'one' });
    expect(first.Err).toMatch(/volume db1 is moving us-east-1a → us-east-1b: snapshot \d+%/);
    expect(plugin.count('db1', 'snapshot started')).toBe(1);
    await plugin.crash();

    await lc.setFaults({});
    await plugin.restart();
    let answer = await call(socket, 'Mount', { Name: 'db1', ID: 'two' });
    for (let i = 0; i < 30 && answer.Err; i++) {
      expect(answer.Err).toMatch(/moving|mount not finished/);
      await delay(500);
      answer = await call(socket, 'Mount', { Name: 'db1', ID: 'two' });
    }
    expect(answer.Err).toBe('');
    const back = await readFile(path.join(answer.Mountpoint!, 'data.bin'));
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // The restarted plugin reused the snapshot its predecessor recorded: no second one.
    expect(plugin.lines().filter((l) => l.msg === 'snapshot started')).toHaveLength(1);
    const vols = (await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: ['db1'] }] }))).Volumes!;
    expect(vols.map((v) => [v.AvailabilityZone, v.Attachments?.map((x) => x.InstanceId)])).toEqual([[B, [ids[1]]]]);
    expect((await call(socket, 'Unmount', { Name: 'db1', ID: 'two' })).Err).toBe('');
  });
});
