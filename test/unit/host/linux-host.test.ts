import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { DataSafetyError, HostError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { CommandError, type ExecOptions, type ExecResult, type ExecRunner } from '../../../host/exec.js';
import type { Host } from '../../../host/host.js';
import { createLinuxHost } from '../../../host/linux-host.js';

interface Call {
  argv: string[];
  options: ExecOptions | undefined;
}
type Responder = (argv: string[]) => Partial<ExecResult> | Error | undefined;

/** Records every command and answers from `respond`; success with empty output by default. */
function fakeExec(respond: Responder = () => undefined): { exec: ExecRunner; calls: Call[]; argvs: () => string[][] } {
  const calls: Call[] = [];
  const exec: ExecRunner = async (file, args, options) => {
    const argv = [file, ...args];
    calls.push({ argv, options });
    const answer = respond(argv);
    if (answer instanceof Error) throw answer;
    return { exitCode: 0, stdout: '', stderr: '', ...answer };
  };
  return { exec, calls, argvs: () => calls.map((c) => c.argv) };
}

const BLANK: Responder = (argv) => (argv[0] === 'blkid' ? { exitCode: 2 } : undefined);

function failed(argv: string[], exitCode: number | undefined, stderr: string, timedOut = false): CommandError {
  return new CommandError(`${argv.join(' ')} failed`, argv.join(' '), exitCode, stderr, timedOut);
}

describe('createLinuxHost', () => {
  let dir: string;
  let proc: string;
  let sys: string;
  let mnt: string;

  const setMounts = (lines: string[]): Promise<void> => writeFile(join(proc, 'self', 'mountinfo'), lines.join('\n'));
  const hostWith = (exec: ExecRunner): Host => createLinuxHost({ deviceDir: join(dir, 'by-id'), exec, procDir: proc, sysDir: sys, readDeviceHead: async () => undefined });

  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'stowage-host-unit-')));
    proc = join(dir, 'proc');
    sys = join(dir, 'sys');
    mnt = join(dir, 'mnt');
    await mkdir(join(proc, 'self'), { recursive: true });
    await mkdir(join(dir, 'by-id'));
    await setMounts(['21 26 0:20 / /proc rw,relatime - proc proc rw']);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('findDevice', () => {
    test('refuses a malformed volume id before touching any path', async () => {
      const host = hostWith(fakeExec().exec);
      for (const id of ['vol-../../etc', 'vol-123', 'vol-0123456789abcdef01', 'VOL-01234567', 'vol-0123456G']) {
        await expect(host.findDevice(id)).rejects.toThrow(HostError);
      }
    });

    test('undefined when no link and no requested name lead to a block device', async () => {
      const host = hostWith(fakeExec().exec);
      await writeFile(join(dir, 'xvdf'), 'a regular file is not a device');
      await symlink(join(dir, 'nowhere'), join(dir, 'by-id', 'nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0'));
      expect(await host.findDevice('vol-0123456789abcdef0', join(dir, 'sdf'))).toBeUndefined();
    });

    test('a relative requested name is refused', async () => {
      await expect(hostWith(fakeExec().exec).findDevice('vol-01234567', 'xvdf')).rejects.toThrow(/absolute path/);
    });
  });

  test('readSerial reads sysfs and is undefined where the kernel shows none', async () => {
    const host = hostWith(fakeExec().exec);
    await writeFile(join(dir, 'nvme1n1'), '');
    await writeFile(join(dir, 'loop3'), '');
    await mkdir(join(sys, 'class', 'block', 'nvme1n1', 'device'), { recursive: true });
    await mkdir(join(sys, 'class', 'block', 'loop3'), { recursive: true });
    await writeFile(join(sys, 'class', 'block', 'nvme1n1', 'device', 'serial'), 'vol0123456789abcdef0      \n');
    await symlink(join(dir, 'nvme1n1'), join(dir, 'by-id-link'));
    expect(await host.readSerial(join(dir, 'by-id-link'))).toBe('vol0123456789abcdef0');
    expect(await host.readSerial(join(dir, 'loop3'))).toBeUndefined();
    await expect(host.readSerial(join(dir, 'missing'))).rejects.toThrow(/does not exist/);
  });

  describe('probe', () => {
    test('exit 2 from blkid -p is a blank device', async () => {
      const { exec, calls } = fakeExec(BLANK);
      expect(await hostWith(exec).probe('/dev/nvme1n1')).toEqual({ hasSignature: false, detail: 'no signature' });
      expect(calls[0]?.argv).toEqual(['blkid', '-p', '-o', 'export', '/dev/nvme1n1']);
      expect(calls[0]?.options?.okCodes).toEqual([0, 2, 8]);
    });

    test('a filesystem is named', async () => {
      const { exec } = fakeExec(() => ({ stdout: 'DEVNAME=/dev/nvme1n1\nUUID=abc\nTYPE=ext4\nUSAGE=filesystem\n' }));
      expect(await hostWith(exec).probe('/dev/nvme1n1')).toEqual({
        fstype: 'ext4', hasSignature: true, detail: 'UUID=abc TYPE=ext4 USAGE=filesystem',
      });
    });

    test('a partition table, or an ambiguous result, is a signature too', async () => {
      const pt = await hostWith(fakeExec(() => ({ stdout: 'DEVNAME=/dev/x\nPTUUID=1\nPTTYPE=gpt\n' })).exec).probe('/dev/x');
      expect(pt).toEqual({ hasSignature: true, detail: 'PTUUID=1 PTTYPE=gpt' });
      const ambiguous = await hostWith(fakeExec(() => ({ exitCode: 8 })).exec).probe('/dev/x');
      expect(ambiguous.hasSignature).toBe(true);
    });

    test('a device that cannot be opened or read is an error, never blank (blkid -p exits 2 for both)', async () => {
      const { exec } = fakeExec(BLANK);
      const unreadable = createLinuxHost({ deviceDir: join(dir, 'by-id'), exec, procDir: proc, sysDir: sys, readDeviceHead: async () => {
        throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      } });
      await expect(unreadable.probe('/dev/nvme1n1')).rejects.toThrow(/cannot read \/dev\/nvme1n1.*never treated as blank/);
      const missing = createLinuxHost({ deviceDir: join(dir, 'by-id'), exec, procDir: proc, sysDir: sys });
      await expect(missing.probe(join(dir, 'no-such-device'))).rejects.toThrow(/cannot read/);
    });

    test('a relative device is refused: it could read as an option', async () => {
      const { exec, calls } = fakeExec(BLANK);
      await expect(hostWith(exec).probe('-o/etc/passwd')).rejects.toThrow(/absolute path/);
      expect(calls).toHaveLength(0);
    });
  });

  describe('mkfs', () => {
    test('ext4 on a blank device: fast, no discard, lazy init', async () => {
      const { exec, argvs } = fakeExec(BLANK);
      await hostWith(exec).mkfs('/dev/nvme1n1', 'ext4');
      expect(argvs()).toEqual([
        ['blkid', '-p', '-o', 'export', '/dev/nvme1n1'],
        ['mkfs.ext4', '-q', '-F', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', '/dev/nvme1n1'],
      ]);
    });

    test('xfs without -f, and a label for either', async () => {
      const { exec, argvs } = fakeExec(BLANK);
      await hostWith(exec).mkfs('/dev/nvme1n1', 'xfs', 'stowage-db');
      await hostWith(exec).mkfs('/dev/nvme2n1', 'ext4', 'stowage-db');
      expect(argvs()[1]).toEqual(['mkfs.xfs', '-q', '-K', '-L', 'stowage-db', '/dev/nvme1n1']);
      expect(argvs()[3]).toEqual([
        'mkfs.ext4', '-q', '-F', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', '-L', 'stowage-db', '/dev/nvme2n1',
      ]);
    });

    test('refuses a device with any signature, and runs nothing else', async () => {
      const { exec, argvs } = fakeExec(() => ({ stdout: 'PTTYPE=dos\n' }));
      const err = await hostWith(exec).mkfs('/dev/nvme1n1', 'ext4').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataSafetyError);
      expect((err as Error).message).toBe('refusing to format /dev/nvme1n1: it already holds PTTYPE=dos');
      expect(argvs()).toEqual([['blkid', '-p', '-o', 'export', '/dev/nvme1n1']]);
    });

    test('refuses a label that is too long or could inject', async () => {
      const { exec, calls } = fakeExec(BLANK);
      await expect(hostWith(exec).mkfs('/dev/x', 'xfs', 'thirteen-char')).rejects.toThrow(HostError);
      await expect(hostWith(exec).mkfs('/dev/x', 'ext4', '-O ^journal')).rejects.toThrow(HostError);
      expect(calls).toHaveLength(0);
    });
  });

  describe('fsck', () => {
    test('ext4: e2fsck -p, with 0, 1 and 2 accepted', async () => {
      const { exec, calls } = fakeExec(() => ({ exitCode: 1 }));
      await hostWith(exec).fsck('/dev/nvme1n1', 'ext4');
      expect(calls[0]?.argv).toEqual(['e2fsck', '-p', '/dev/nvme1n1']);
      expect(calls[0]?.options?.okCodes).toEqual([0, 1, 2]);
    });

    test('ext4: exit 4 and above is a HostError that says to check by hand', async () => {
      const { exec } = fakeExec((argv) => failed(argv, 4, 'UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.'));
      const err = await hostWith(exec).fsck('/dev/nvme1n1', 'ext4').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostError);
      expect((err as Error).message).toMatch(/will not repair unattended; check it by hand/);
    });

    test('xfs: nothing runs (the log is replayed at mount)', async () => {
      const { exec, calls } = fakeExec();
      await hostWith(exec).fsck('/dev/nvme1n1', 'xfs');
      expect(calls).toHaveLength(0);
    });
  });

  describe('mount', () => {
    test('ext4 with options, creating the mount point', async () => {
      const { exec, argvs } = fakeExec();
      const target = join(mnt, 'v1');
      await hostWith(exec).mount('/dev/nvme1n1', target, 'ext4', ['noatime', 'data=ordered']);
      expect(argvs()).toEqual([['mount', '-t', 'ext4', '-o', 'noatime,data=ordered,nosuid,nodev', '/dev/nvme1n1', target]]);
    });

    test('nosuid,nodev unless suid or dev is asked for (invariant 11); xfs always gets nouuid', async () => {
      const { exec, argvs } = fakeExec();
      await hostWith(exec).mount('/dev/nvme1n1', join(mnt, 'a'), 'ext4', []);
      await hostWith(exec).mount('/dev/nvme2n1', join(mnt, 'b'), 'xfs', []);
      await hostWith(exec).mount('/dev/nvme3n1', join(mnt, 'c'), 'xfs', ['noatime', 'nouuid']);
      await hostWith(exec).mount('/dev/nvme4n1', join(mnt, 'd'), 'ext4', ['suid', 'dev']);
      expect(argvs()).toEqual([
        ['mount', '-t', 'ext4', '-o', 'nosuid,nodev', '/dev/nvme1n1', join(mnt, 'a')],
        ['mount', '-t', 'xfs', '-o', 'nosuid,nodev,nouuid', '/dev/nvme2n1', join(mnt, 'b')],
        ['mount', '-t', 'xfs', '-o', 'noatime,nouuid,nosuid,nodev', '/dev/nvme3n1', join(mnt, 'c')],
        ['mount', '-t', 'ext4', '-o', 'suid,dev', '/dev/nvme4n1', join(mnt, 'd')],
      ]);
    });

    test('refuses options with characters outside the safe set', async () => {
      const { exec, calls } = fakeExec();
      for (const bad of ['noatime ', 'uid=0;reboot', 'NOATIME', 'x\ny', 'a/b', '']) {
        await expect(hostWith(exec).mount('/dev/x', join(mnt, 'v'), 'ext4', [bad])).rejects.toThrow(/refusing mount option/);
      }
      expect(calls).toHaveLength(0);
    });

    test('the same device already there is a no-op; another one is an error', async () => {
      const target = join(mnt, 'v1');
      await setMounts([`40 26 7:0 / ${target} rw,relatime - ext4 /dev/loop0 rw`]);
      const { exec, calls } = fakeExec();
      await hostWith(exec).mount('/dev/loop0', target, 'ext4', []);
      expect(calls).toHaveLength(0);
      await expect(hostWith(exec).mount('/dev/loop1', target, 'ext4', [])).rejects.toThrow(
        /\/dev\/loop0 \(ext4\) is already mounted there/,
      );
    });
  });

  test('bindMount binds a directory and refuses anything else', async () => {
    const { exec, argvs } = fakeExec();
    const source = join(dir, 'export');
    await mkdir(source);
    await hostWith(exec).bindMount(source, join(mnt, 'shared'));
    // A bind ignores flags; the remount applies them (nosuid,nodev by default: invariant 11).
    expect(argvs()).toEqual([['mount', '--bind', source, join(mnt, 'shared')], ['mount', '-o', 'remount,bind,nosuid,nodev', join(mnt, 'shared')]]);
    await expect(hostWith(exec).bindMount(join(dir, 'missing'), join(mnt, 'x'))).rejects.toThrow(/does not exist/);
    await writeFile(join(dir, 'file'), '');
    await expect(hostWith(exec).bindMount(join(dir, 'file'), join(mnt, 'x'))).rejects.toThrow(/not a directory/);
  });

  describe('mountNfs', () => {
    const EFS_OPTS = ['nfsvers=4.1', 'rsize=1048576', 'wsize=1048576', 'hard', 'timeo=600', 'retrans=2', 'noresvport'];

    test('mount -t nfs4 with the options, in order', async () => {
      const { exec, argvs } = fakeExec();
      const target = join(mnt, 'efs');
      await hostWith(exec).mountNfs('fs-0123.efs.eu-west-1.amazonaws.com:/stowage/c1/v1', target, EFS_OPTS);
      expect(argvs()).toEqual([
        [
          'mount', '-t', 'nfs4', '-o', 'nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport',
          'fs-0123.efs.eu-west-1.amazonaws.com:/stowage/c1/v1', target,
        ],
      ]);
    });

    test('IPv4 and IPv6 servers are accepted; anything else is not', async () => {
      const { exec, argvs } = fakeExec();
      await hostWith(exec).mountNfs('10.0.1.5:/', join(mnt, 'a'), []);
      await hostWith(exec).mountNfs('[fd00::5]:/export', join(mnt, 'b'), ['hard']);
      expect(argvs()).toEqual([
        ['mount', '-t', 'nfs4', '10.0.1.5:/', join(mnt, 'a')],
        ['mount', '-t', 'nfs4', '-o', 'hard', '[fd00::5]:/export', join(mnt, 'b')],
      ]);
      for (const bad of ['/local/path', '-oexec:/x', 'host:relative', 'host:/a b']) {
        await expect(hostWith(exec).mountNfs(bad, join(mnt, 'c'), [])).rejects.toThrow(/invalid NFS source/);
      }
      await expect(hostWith(exec).mountNfs('h:/x', join(mnt, 'c'), ['sec=sys,exec;'])).rejects.toThrow(/refusing/);
    });
  });

  describe('unmount', () => {
    const target = (): string => join(mnt, 'v1');
    beforeEach(async () => {
      await mkdir(target(), { recursive: true });
      await setMounts([
        '21 26 0:20 / /proc rw,relatime - proc proc rw',
        `40 26 7:0 / ${target()} rw,relatime - ext4 /dev/loop0 rw`,
      ]);
    });

    test('sync -f of that filesystem, then umount', async () => {
      const { exec, argvs } = fakeExec();
      await hostWith(exec).unmount(target());
      expect(argvs()).toEqual([
        ['sync', '-f', target()],
        ['umount', target()],
      ]);
    });

    test('nothing mounted there: nothing runs', async () => {
      const { exec, calls } = fakeExec();
      await hostWith(exec).unmount(join(mnt, 'other'));
      expect(calls).toHaveLength(0);
    });

    test('busy: a HostError naming the holders, and no lazy unmount', async () => {
      await mkdir(join(proc, '4242', 'fd'), { recursive: true });
      await writeFile(join(proc, '4242', 'comm'), 'sleep\n');
      await symlink(join(target(), 'data'), join(proc, '4242', 'cwd'));
      const { exec, argvs } = fakeExec((argv) =>
        argv[0] === 'umount' ? failed(argv, 32, `umount: ${target()}: target is busy.`) : undefined,
      );
      const err = await hostWith(exec).unmount(target(), { timeoutMs: 1000, lazyAfterTimeout: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostError);
      expect((err as Error).message).toBe(`cannot unmount ${target()}: it is busy, held by sleep (pid 4242: cwd)`);
      expect(argvs().filter((a) => a.includes('-l'))).toEqual([]);
    });

    test('busy with nobody visible still says why it could be', async () => {
      const { exec } = fakeExec((argv) => {
        if (argv[0] === 'umount') return failed(argv, 32, `umount: ${target()}: target is busy.`);
        if (argv[0] === 'fuser') return { exitCode: 1 };
        return undefined;
      });
      await expect(hostWith(exec).unmount(target())).rejects.toThrow(/it is busy, no process visible from here holds it/);
    });

    test('another failure is passed on as it is', async () => {
      const boom = failed(['umount', target()], 32, 'umount: something else');
      const { exec } = fakeExec((argv) => (argv[0] === 'umount' ? boom : undefined));
      await expect(hostWith(exec).unmount(target())).rejects.toBe(boom);
    });

    test('a hung umount becomes umount -l, with a warning on the operation log, when asked', async () => {
      const lines: string[] = [];
      const log: Logger = pino(
        { level: 'warn' },
        new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }),
      );
      const { exec, calls, argvs } = fakeExec((argv) =>
        argv[0] === 'umount' && argv[1] !== '-l' ? failed(argv, undefined, '', true) : undefined,
      );
      await hostWith(exec).withLog(log.child({ volume: 'db' })).unmount(target(), { timeoutMs: 5000, lazyAfterTimeout: true });
      expect(argvs()).toEqual([
        ['sync', '-f', target()],
        ['umount', target()],
        ['umount', '-l', target()],
      ]);
      expect(calls[1]?.options?.timeoutMs).toBeLessThanOrEqual(5000);
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([expect.objectContaining({ volume: 'db', msg: expect.stringMatching(/umount -l/) })]);
    });

    test('a hung sync goes straight to umount -l; without lazyAfterTimeout the timeout is the error', async () => {
      const hang: Responder = (argv) => (argv[0] === 'sync' ? failed(argv, undefined, '', true) : undefined);
      const lazy = fakeExec(hang);
      await hostWith(lazy.exec).unmount(target(), { timeoutMs: 100, lazyAfterTimeout: true });
      expect(lazy.argvs()).toEqual([
        ['sync', '-f', target()],
        ['umount', '-l', target()],
      ]);
      const strict = fakeExec(hang);
      await expect(hostWith(strict.exec).unmount(target(), { timeoutMs: 100 })).rejects.toMatchObject({ timedOut: true });
      expect(strict.argvs()).toEqual([['sync', '-f', target()]]);
    });
  });

  test('mounts, mountAt (topmost of stacked mounts) and sync', async () => {
    await setMounts([
      '21 26 0:20 / /proc rw,relatime - proc proc rw',
      '40 26 7:0 / /mnt/stowage/my\\040vol rw - ext4 /dev/loop0 rw',
      '41 40 7:1 / /mnt/stowage/my\\040vol rw - xfs /dev/loop1 rw',
    ]);
    const { exec, argvs } = fakeExec();
    const host = hostWith(exec);
    expect(await host.mounts()).toHaveLength(3);
    expect((await host.mountAt('/mnt/stowage/my vol'))?.source).toBe('/dev/loop1');
    expect((await host.mountAt('/mnt/stowage/my vol/'))?.mountId).toBe(41);
    expect(await host.mountAt('/mnt/stowage/other')).toBeUndefined();
    await host.sync();
    expect(argvs()).toEqual([['sync']]);
  });
});
