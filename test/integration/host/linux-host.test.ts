import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSafetyError, HostError } from '../../../core/errors.js';
import type { Filesystem } from '../../../core/volume-options.js';
import { runCommand } from '../../../host/exec.js';
import { createLinuxHost } from '../../../host/linux-host.js';

// Real loop devices, mkfs and mount need root; elsewhere these tests are skipped, not failed.
import { asRoot } from '../../helpers/as-root.js';

// mkfs.xfs refuses anything under 300 MiB; the file is sparse, so this costs almost nothing.
const DISK_BYTES = 320 * 1024 * 1024;

asRoot('LinuxHost on loop devices', () => {
  let work: string;
  let deviceDir: string;
  let loops: string[] = [];
  let mounted: string[] = [];
  let sleepers: ChildProcess[] = [];

  const host = () => createLinuxHost({ deviceDir });

  async function attachDisk(name: string): Promise<string> {
    const file = join(work, `${name}.img`);
    await writeFile(file, '');
    await truncate(file, DISK_BYTES);
    const { stdout } = await runCommand('losetup', ['--find', '--show', file]);
    const device = stdout.trim();
    loops.push(device);
    return device;
  }

  /** What attaching a volume does on Nitro: a by-id link named after the volume id. */
  async function linkVolume(volumeId: string, device: string): Promise<void> {
    await symlink(device, join(deviceDir, `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`));
  }

  beforeEach(async () => {
    // Canonical, as mountinfo shows it.
    work = await realpath(await mkdtemp(join(tmpdir(), 'stowage-host-it-')));
    deviceDir = join(work, 'by-id');
    await mkdir(deviceDir);
  });

  // Cleanup must run even when a test failed half-way: every step forgives what is already gone.
  afterEach(async () => {
    for (const sleeper of sleepers) sleeper.kill('SIGKILL');
    await Promise.all(sleepers.filter((s) => s.exitCode === null && s.signalCode === null).map((s) => once(s, 'exit')));
    for (const target of mounted.reverse()) {
      await runCommand('umount', ['-l', target], { okCodes: [0, 32] }).catch(() => undefined);
    }
    for (const loop of loops) await runCommand('losetup', ['-d', loop]).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
    sleepers = [];
    mounted = [];
    loops = [];
  });

  test('findDevice: by-id link first, then the requested name and its sd/xvd alias', async () => {
    const byId = await attachDisk('by-id');
    const xen = await attachDisk('xen');
    await linkVolume('vol-0123456789abcdef0', byId);
    await symlink(xen, join(work, 'xvdf'));
    const h = host();

    expect(await h.findDevice('vol-0123456789abcdef0')).toBe(byId);
    expect(await h.findDevice('vol-0123456789abcdef0', join(work, 'xvdf'))).toBe(byId);
    expect(await h.findDevice('vol-0aaaaaaaaaaaaaaaa', join(work, 'xvdf'))).toBe(xen);
    expect(await h.findDevice('vol-0aaaaaaaaaaaaaaaa', join(work, 'sdf'))).toBe(xen);
    expect(await h.findDevice('vol-0aaaaaaaaaaaaaaaa', join(work, 'sdg'))).toBeUndefined();
    expect(await h.findDevice('vol-0aaaaaaaaaaaaaaaa')).toBeUndefined();
    // Loop devices have no serial; NVMe ones would carry the volume id.
    expect(await h.readSerial(byId)).toBeUndefined();
  });

  test.each<[Filesystem, Filesystem]>([
    ['ext4', 'xfs'],
    ['xfs', 'ext4'],
  ])('%s: format, refuse to reformat, mount, busy unmount, fsck, remount', async (fs, otherFs) => {
    const h = host();
    const volumeId = 'vol-0fedcba9876543210';
    await linkVolume(volumeId, await attachDisk(fs));
    const device = await h.findDevice(volumeId);
    if (device === undefined) throw new Error('the by-id link did not resolve');

    expect(await h.probe(device)).toEqual({ hasSignature: false, detail: 'no signature' });
    await h.mkfs(device, fs, 'stowage');
    const probed = await h.probe(device);
    expect(probed).toMatchObject({ fstype: fs, hasSignature: true });
    expect(probed.detail).toContain('LABEL=stowage');

    const target = join(work, 'mnt', fs);
    mounted.push(target);
    await h.mount(device, target, fs, ['noatime']);
    expect(await h.mountAt(target)).toMatchObject({ source: device, fstype: fs });
    await h.mount(device, target, fs, ['noatime']);
    expect((await h.mounts()).filter((m) => m.target === target)).toHaveLength(1);
    await writeFile(join(target, 'data.txt'), 'written before the unmount');
    await mkdir(join(target, 'app'));

    const sleeper = spawn('sleep', ['300'], { cwd: join(target, 'app'), stdio: 'ignore' });
    sleepers.push(sleeper);
    await once(sleeper, 'spawn');
    const busy = await h.unmount(target).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(HostError);
    expect((busy as Error).message).toContain(`sleep (pid ${sleeper.pid}: cwd)`);
    expect(await h.mountAt(target)).toBeDefined();

    sleeper.kill('SIGKILL');
    await once(sleeper, 'exit');
    await h.unmount(target);
    expect(await h.mountAt(target)).toBeUndefined();
    await h.unmount(target);

    for (const attempt of [fs, otherFs]) {
      await expect(h.mkfs(device, attempt)).rejects.toBeInstanceOf(DataSafetyError);
    }
    expect((await h.probe(device)).fstype).toBe(fs);

    await h.fsck(device, fs);
    await h.mount(device, target, fs, []);
    expect(await readFile(join(target, 'data.txt'), 'utf8')).toBe('written before the unmount');
    await h.unmount(target);
  });

  test('mount refuses to stack a second device on a mount point', async () => {
    const h = host();
    const first = await attachDisk('first');
    const second = await attachDisk('second');
    await h.mkfs(first, 'ext4');
    await h.mkfs(second, 'ext4');
    const target = join(work, 'mnt', 'one');
    mounted.push(target);
    await h.mount(first, target, 'ext4', []);
    await expect(h.mount(second, target, 'ext4', [])).rejects.toThrow(/is already mounted there/);
    expect((await h.mountAt(target))?.source).toBe(first);
  });

  test('bindMount shares a folder, once, and unmounts cleanly', async () => {
    const h = host();
    const source = join(work, 'export', 'v1');
    await mkdir(source, { recursive: true });
    await writeFile(join(source, 'shared.txt'), 'from the export');
    const target = join(work, 'mnt', 'shared');
    mounted.push(target);

    await h.bindMount(source, target);
    await h.bindMount(source, target);
    expect((await h.mounts()).filter((m) => m.target === target)).toHaveLength(1);
    expect(await readFile(join(target, 'shared.txt'), 'utf8')).toBe('from the export');
    await writeFile(join(target, 'back.txt'), 'through the mount');
    expect(await readFile(join(source, 'back.txt'), 'utf8')).toBe('through the mount');

    await h.unmount(target);
    expect(await h.mountAt(target)).toBeUndefined();
    await expect(readFile(join(target, 'shared.txt'))).rejects.toThrow(/ENOENT/);
  });
});
