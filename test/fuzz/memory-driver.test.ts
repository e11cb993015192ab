/**
 * Property-based fuzzing of the protocol server over its unix socket, with an in-memory driver:
 * hundreds of random request sequences, valid and not. The server never crashes, every reply is a
 * well-formed protocol answer, a refused request changes nothing, and no file appears outside the
 * mount root and the state folder.
 */
import path from 'node:path';
import fc from 'fast-check';
import { MemoryDriver } from '../unit/plugin/memory-driver.js';
import { post } from '../unit/plugin/socket-client.js';
import { startFuzzPlugin, type FuzzPlugin } from './fuzz-plugin.js';
import { isUnder, send, wellFormed } from './protocol-check.js';
import { lifecycleArbitrary, requestArbitrary } from './requests.js';

/** Mountpoints under the plugin's mount root, as a real driver's are. */
class RootedMemoryDriver extends MemoryDriver {
  constructor(private readonly mountRoot: string) {
    super('relocatable');
  }
  override mountpointOf(name: string): string {
    return path.join(this.mountRoot, name);
  }
}

const VALID_OPTS = fc.record(
  { backing: fc.constant('relocatable'), size: fc.constantFrom('1', '5', '100'), ebstype: fc.constantFrom('gp3', 'io2'), fs: fc.constantFrom('ext4', 'xfs'), mountopts: fc.constantFrom('', 'noatime', 'noatime,discard') },
  { requiredKeys: [] },
);

describe('protocol fuzzing with an in-memory driver', () => {
  let fuzz: FuzzPlugin;
  let driver: RootedMemoryDriver;

  beforeAll(async () => {
    fuzz = await startFuzzPlugin('memory', (mountRoot) => [(driver = new RootedMemoryDriver(mountRoot))], async () => true);
  });
  afterAll(async () => {
    await fuzz?.close();
  });

  test('random request sequences: well-formed replies, refusals change nothing, paths stay inside the roots', async () => {
    const requests = fc.array(fc.oneof(requestArbitrary(['fz-a', 'fz-b', 'fz-c'], ['id-1', 'id-2'], VALID_OPTS), lifecycleArbitrary(['fz-a', 'fz-b', 'fz-c'], ['id-1', 'id-2'], VALID_OPTS)), { minLength: 1, maxLength: 8 });
    let served = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(requests, async (sequence) => {
        for (const spec of sequence) {
          const volumesBefore = [...driver.volumes.keys()].sort();
          const createsBefore = driver.calls.filter((c) => c.startsWith('create ')).length;
          const mountsBefore = await fuzz.persistedMounts();
          const { status, json } = wellFormed(spec, await send(fuzz.socket, spec));
          if (status === 200) {
            served++;
            if (typeof json.Mountpoint === 'string' && json.Mountpoint !== '') expect(isUnder(json.Mountpoint, fuzz.mountRoot)).toBe(true);
          } else {
            refused++;
            expect([...driver.volumes.keys()].sort()).toEqual(volumesBefore);
            expect(driver.calls.filter((c) => c.startsWith('create ')).length).toBe(createsBefore);
            expect(await fuzz.persistedMounts()).toBe(mountsBefore);
          }
        }
        expect((await post(fuzz.socket, '/VolumeDriver.Capabilities', '{}')).status).toBe(200);
      }),
      { numRuns: 150 },
    );
    // Both halves of the space were explored, not only refusals.
    expect(served).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
    expect(driver.calls.some((c) => c.startsWith('mount '))).toBe(true);
    expect(await fuzz.strayChanges()).toEqual({ appeared: [], gone: [] });
  });
});
