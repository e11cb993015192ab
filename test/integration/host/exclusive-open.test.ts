import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, realpath, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostError } from '../../../core/errors.js';
import { runCommand } from '../../../host/exec.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { asRoot } from '../../helpers/as-root.js';

const DISK_BYTES = 64 * 1024 * 1024;

// Issue 15.6: a mount made in another mount namespace is missing from our own mountinfo, and only
// an exclusive open of the device shows that detaching it would pull the disk from under a writer.
asRoot('deviceHeldBy on a loop device', () => {
  let work: string;
  let loop: string | undefined;
  let holder: ChildProcess | undefined;

  beforeEach(async () => {
    work = await realpath(await mkdtemp(join(tmpdir(), 'stowage-excl-it-')));
    const file = join(work, 'disk.img');
    await writeFile(file, '');
    await truncate(file, DISK_BYTES);
    loop = (await runCommand('losetup', ['--find', '--show', file])).stdout.trim();
    await runCommand('mkfs.ext4', ['-q', '-F', loop]);
  });

  // Runs after a failed test too: the namespace dies with its one process, and its mount with it.
  afterEach(async () => {
    if (holder && holder.exitCode === null && holder.signalCode === null) {
      const exited = once(holder, 'exit');
      holder.kill('SIGKILL');
      await exited;
    }
    holder = undefined;
    if (loop) await untilDetached(loop);
    loop = undefined;
    await rm(work, { recursive: true, force: true });
  });

  /** Mounts the device in a private mount namespace of its own, held by a process that only sleeps. */
  async function mountElsewhere(device: string, target: string): Promise<number> {
    await mkdir(target);
    // exec: the namespace's one process is the one we kill, so nothing outlives the test holding it.
    holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount "$0" "$1" && echo mounted && exec sleep 60', device, target], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    holder.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [first] = (await Promise.race([once(holder.stdout!, 'data'), once(holder, 'exit')])) as unknown[];
    if (String(first).trim() !== 'mounted') throw new Error(`could not mount ${device} in another namespace: ${stderr}`);
    return holder.pid!;
  }

  test('a mount in another mount namespace: invisible in our mountinfo, and the exclusive open names it', async () => {
    const device = loop!;
    const host = createLinuxHost({ deviceDir: work });
    expect(await host.deviceHeldBy(device)).toBeUndefined();

    const target = join(work, 'elsewhere');
    const pid = await mountElsewhere(device, target);
    expect((await host.mounts()).some((m) => m.source === device)).toBe(false);

    expect(await host.deviceHeldBy(device)).toBe(`mounted at ${target} in the mount namespace of pid ${pid} (sleep)`);
  });

  test('a path that is not a block device is an error, never "free"', async () => {
    const host = createLinuxHost({ deviceDir: work });
    const err = await host.deviceHeldBy(join(work, 'disk.img')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    expect((err as Error).message).toBe(`${join(work, 'disk.img')} is not a block device; cannot tell whether anything holds it`);
  });
});

/** The kernel frees a namespace's mounts just after its last process exits; losetup -d waits for that. */
async function untilDetached(loop: string): Promise<void> {
  for (let i = 0; i < 50; i += 1) {
    const { exitCode } = await runCommand('losetup', ['-d', loop], { okCodes: [0, 1] });
    if (exitCode === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`could not detach ${loop}`);
}
