import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { importBusybox } from '../helpers/busybox-image.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { mountsUnder } from '../helpers/owned-dir.js';

/** pids whose command line names the folder: dockerd, containerd and shims all carry it. */
async function processesUsing(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir)) found.push(`${entry}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

describe('private dockerd test bed', () => {
  let d: Dockerd | undefined;

  afterAll(async () => {
    await d?.stop();
  });

  test('starts, runs a busybox container, stops and leaves nothing behind', async () => {
    d = await startDockerd({ name: 'smoke' });
    const image = await importBusybox(d);
    const r = await d.docker(['run', '--rm', '--network', 'none', image, 'sh', '-c', 'echo hi']);
    expect(r.stdout).toBe('hi\n');
    // Leave a running container behind on purpose: stop() must remove it.
    await d.docker(['run', '-d', '--network', 'none', image, 'sleep', '300']);
    expect(await processesUsing(d.baseDir)).not.toEqual([]);

    await d.stop();
    expect(await processesUsing(d.baseDir)).toEqual([]);
    expect(existsSync(d.baseDir)).toBe(false);
    expect(await mountsUnder(d.baseDir)).toEqual([]);
  });
});
