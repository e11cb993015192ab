import { Writable } from 'node:stream';
/**
 * The stowage command as a newcomer and an operator meet it (issue 18): shared volumes in
 * directory mode are listed and inspected, a failure prints the error and no table, `plugin
 * --help` is the settings table loadConfig reads, and logs read as lines on a terminal.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DescribeSnapshotsCommand, DescribeVolumesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeAccessPointsCommand, EFSClient } from '@aws-sdk/client-efs';
import { mockClient } from 'aws-sdk-client-mock';
import type { OpsCommand } from '../../../cli/ops/command.js';
import { ExitCode } from '../../../cli/ops/exit-codes.js';
import { inspectCommand } from '../../../cli/ops/inspect.js';
import { lsCommand } from '../../../cli/ops/ls.js';
import { chooseFormat, createLogger, textLine } from '../../../core/log.js';
import { loadConfig, SETTINGS, settingsHelp } from '../../../plugin/config.js';
import { runOps } from '../../helpers/run-ops.js';

const ec2 = mockClient(EC2Client);
const efs = mockClient(EFSClient);
let dir: string;

// No plugin's state or mounts of this machine: only what the test gives.
const run = (command: OpsCommand, argv: string[]) =>
  runOps(command, argv, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', STOWAGE_CLUSTER: 'c1', STOWAGE_STATE_DIR: path.join(dir, 'state'), STOWAGE_MOUNT_ROOT: path.join(dir, 'mnt') });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cli-first-'));
  ec2.reset();
  efs.reset();
  ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
  ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
  efs.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [] });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('shared volumes in directory mode', () => {
  beforeEach(async () => {
    for (const folder of ['stowage/c1/web', 'stowage/c1/media', 'stowage/c1/.removed/old-2026-01-01T00-00-00-000Z', 'stowage/other/theirs']) {
      await mkdir(path.join(dir, 'share', folder), { recursive: true });
    }
    efs.on(DescribeAccessPointsCommand).resolves({
      AccessPoints: [{ AccessPointId: 'fsap-1', FileSystemId: 'fs-1', LifeCycleState: 'available', Tags: [{ Key: 'stowage:cluster', Value: 'c1' }, { Key: 'stowage:volume', Value: 'media' }] }],
    });
  });

  test('ls shows them, marked shared, beside access points, each once; other clusters and kept data are not volumes', async () => {
    const { code, stdout } = await run(lsCommand, ['--region', 'us-east-1', '--shared-root', path.join(dir, 'share'), '--json']);
    expect(code).toBe(ExitCode.ok);
    const { volumes } = JSON.parse(stdout) as { volumes: { name: string; backing: string; type: string }[] };
    expect(volumes.map((v) => [v.name, v.backing, v.type])).toEqual([['media', 'shared', 'efs fs-1'], ['web', 'shared', 'dir share']]);
    const table = await run(lsCommand, ['--region', 'us-east-1', '--shared-root', path.join(dir, 'share')]);
    expect(table.stdout).toMatch(/^web\s+shared\s+-\s+-\s+-\s+dir share\s+available/m);
  });

  test('inspect finds one that AWS has no resource for', async () => {
    const { code, stdout } = await run(inspectCommand, ['web', '--region', 'us-east-1', '--shared-root', path.join(dir, 'share')]);
    expect(code).toBe(ExitCode.ok);
    expect(stdout).toMatch(/Backing:\s+shared \(a directory on share\)\nPath:\s+\/stowage\/c1\/web/);
    const missing = await run(inspectCommand, ['nowhere', '--region', 'us-east-1', '--shared-root', path.join(dir, 'share')]);
    expect(missing.code).toBe(ExitCode.notFound);
  });
});

test('ls that fails everywhere prints the error and no table', async () => {
  ec2.on(DescribeVolumesCommand).rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
  const { code, stdout, stderr } = await run(lsCommand, ['--region', 'us-east-1']);
  expect(code).toBe(ExitCode.failed);
  expect(stdout).toBe('');
  expect(stderr).toMatch(/region us-east-1: .*Could not load credentials/);
});

describe('stowage plugin --help', () => {
  test('lists every setting loadConfig reads, with its default and meaning', () => {
    const read = new Set<string>();
    const env = new Proxy({} as Record<string, string | undefined>, { get: (_t, key) => (read.add(String(key)), undefined) });
    loadConfig(env);
    expect([...read].sort()).toEqual(Object.keys(SETTINGS).sort());
    const help = settingsHelp();
    for (const [name, s] of Object.entries(SETTINGS)) {
      expect(help).toMatch(new RegExp(`^  ${name} +${s.meaning.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${s.default ? ` \\(default ${s.default}\\)` : ''}$`, 'm'));
    }
  });

  test('each default is what loadConfig falls back to', () => {
    const fromTable = Object.fromEntries(Object.entries(SETTINGS).map(([name, s]) => [name, s.default]));
    expect(loadConfig(fromTable)).toEqual(loadConfig({}));
  });
});

describe('logs', () => {
  test('on a terminal a line reads as time, level, message, then the fields', () => {
    const json = JSON.stringify({ level: 40, time: '2026-12-01T14:03:04.567Z', app: 'stowage', volume: 'db', op: 'create', msg: 'volume db was created without a backing option', err: { message: 'boom' } });
    expect(textLine(json)).toBe('14:03:04 WARN  volume db was created without a backing option  volume=db op=create err="boom"\n');
  });

  test('text on a TTY, JSON otherwise, and STOWAGE_LOG_FORMAT decides when set', () => {
    const tty = Object.assign(new Writable(), { isTTY: true });
    expect(chooseFormat(tty)).toBe('text');
    expect(chooseFormat(new Writable())).toBe('json');
    expect(chooseFormat(tty, 'json')).toBe('json');
    expect(loadConfig({ STOWAGE_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(() => loadConfig({ STOWAGE_LOG_FORMAT: 'pretty' })).toThrow('STOWAGE_LOG_FORMAT');
    let out = '';
    const log = createLogger('info', Object.assign(new Writable({ write: (c, _e, done) => ((out += c.toString()), done()) }), { isTTY: true }));
    log.info({ socket: '/run/x.sock' }, 'plugin listening');
    expect(out).toMatch(/^\d\d:\d\d:\d\d INFO  plugin listening  socket=\/run\/x.sock\n$/);
  });
});
