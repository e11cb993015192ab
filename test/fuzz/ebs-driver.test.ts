/**
 * The protocol fuzzer against the real relocatable driver on a zero-latency localcloud (real SDK,
 * loop devices, mkfs, mount): a smaller run, since valid requests create, attach and format real
 * volumes. A refused request makes no mutating EC2 call and mounts nothing; nothing appears outside
 * the mount root and the state folder.
 */
import { CallCounter } from '../../aws/call-counter.js';
import { createAwsClients } from '../../aws/clients.js';
import { createEbsDriver } from '../../drivers/ebs/ebs-driver.js';
import { createLinuxHost } from '../../host/linux-host.js';
import { readMountinfo } from '../../host/mountinfo.js';
import { silentLogger } from '../../core/log.js';
import fc from 'fast-check';
import { post } from '../unit/plugin/socket-client.js';
import { loopsUnder, runInstance, startTestCloud, type TestCloud } from '../integration/localcloud/helpers.js';
import { startFuzzPlugin, type FuzzPlugin } from './fuzz-plugin.js';
import { isUnder, send, wellFormed } from './protocol-check.js';
import { lifecycleArbitrary, requestArbitrary } from './requests.js';

import { asRoot } from '../helpers/as-root.js';
const MUTATING = ['CreateVolume', 'DeleteVolume', 'AttachVolume', 'DetachVolume', 'CreateSnapshot', 'DeleteSnapshot'];
const VALID_OPTS = fc.record({ size: fc.constant('1'), fs: fc.constant('ext4'), mountopts: fc.constantFrom('', 'noatime') }, { requiredKeys: [] });

asRoot('protocol fuzzing with the relocatable driver on localcloud', () => {
  let cloud: TestCloud;
  let fuzz: FuzzPlugin;
  const counter = new CallCounter();

  beforeAll(async () => {
    cloud = await startTestCloud({ latency: 'zero' });
    const zone = cloud.lc.zones[0]!;
    const instanceId = await runInstance(cloud, zone);
    const { ec2 } = createAwsClients({ region: cloud.lc.region, endpointUrl: cloud.lc.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    fuzz = await startFuzzPlugin('ebs', (mountRoot) => [
      createEbsDriver({
        ec2, counter, log: silentLogger, cluster: 'fuzz', mountRoot, fenceAfterMs: 120_000, pollInitialMs: 20,
        identity: { instanceId, zone, region: cloud.lc.region },
        host: createLinuxHost({ deviceDir: cloud.lc.deviceDir(instanceId) }),
      }),
    ]);
  });
  afterAll(async () => {
    try {
      await fuzz?.close();
    } finally {
      await cloud?.close();
    }
  });

  const mounted = async () => (await readMountinfo()).filter((m) => isUnder(m.target, fuzz.root)).map((m) => m.target).sort();
  const mutations = () => MUTATING.reduce((n, op) => n + counter.count(op), 0);

  test('random request sequences against real volumes', async () => {
    const requests = fc.array(fc.oneof(requestArbitrary(['fe-a', 'fe-b'], ['id-1', 'id-2'], VALID_OPTS), lifecycleArbitrary(['fe-a', 'fe-b'], ['id-1', 'id-2'], VALID_OPTS)), { minLength: 1, maxLength: 6 });
    let served = 0;
    await fc.assert(
      fc.asyncProperty(requests, async (sequence) => {
        for (const spec of sequence) {
          const before = { mutations: mutations(), persisted: await fuzz.persistedMounts(), mounted: await mounted() };
          const { status, json } = wellFormed(spec, await send(fuzz.socket, spec));
          if (status === 200) {
            served++;
            if (typeof json.Mountpoint === 'string' && json.Mountpoint !== '') expect(isUnder(json.Mountpoint, fuzz.mountRoot)).toBe(true);
          } else {
            expect({ mutations: mutations(), persisted: await fuzz.persistedMounts(), mounted: await mounted() }).toEqual(before);
          }
        }
        expect((await post(fuzz.socket, '/VolumeDriver.Capabilities', '{}')).status).toBe(200);
      }),
      { numRuns: 30 },
    );
    expect(served).toBeGreaterThan(10);
    expect(counter.count('CreateVolume')).toBeGreaterThan(0);
    expect(counter.count('AttachVolume')).toBeGreaterThan(0);
    for (const target of await mounted()) expect(isUnder(target, fuzz.mountRoot)).toBe(true);
    expect(await fuzz.strayChanges()).toEqual({ appeared: [], gone: [] });
    // Loop devices are the emulator's, under its own folder; none of them point anywhere else.
    for (const line of loopsUnder(cloud.lc.dir)) expect(line).toContain(cloud.lc.dir);
  });
});
