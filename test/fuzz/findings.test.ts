/**
 * Faults the protocol fuzzer found, pinned as concrete requests so they stay fixed.
 */
import { MemoryDriver } from '../unit/plugin/memory-driver.js';
import { post } from '../unit/plugin/socket-client.js';
import { startFuzzPlugin, type FuzzPlugin } from './fuzz-plugin.js';

describe('protocol fuzzing findings', () => {
  let fuzz: FuzzPlugin;
  beforeAll(async () => {
    fuzz = await startFuzzPlugin('findings', () => [new MemoryDriver()], async () => true);
  });
  afterAll(async () => {
    await fuzz?.close();
  });

  const createErr = async (opts: string) => {
    const reply = await post(fuzz.socket, '/VolumeDriver.Create', `{"Name":"f","Opts":${opts}}`);
    expect(reply.status).toBe(500);
    return (JSON.parse(reply.body) as { Err: string }).Err;
  };

  test('a refused option value is not echoed whole into Err', async () => {
    const err = await createErr(JSON.stringify({ nosuchkey: 'y'.repeat(512 * 1024) }));
    expect(err.length).toBeLessThan(2000);
  });

  test('a deeply nested option value is refused with a clear message, not an internal error', async () => {
    const err = await createErr(`{"size":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    expect(err).toContain('invalid option size');
  });
});
