/**
 * Scheduled backups (issue 17 item 3) on real loop devices, mkfs and mount, through the real SDK
 * against localcloud: the schedule and its retention, the freeze around CreateSnapshot (a writer
 * pauses, never fails), and a filesystem left frozen by a killed plugin, thawed at the next start.
 */
import { spawn } from 'node:child_process';
import { appendFile, open } from 'node:fs/promises';
import path from 'node:path';
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { delay } from '../../../core/delay.js';
import { silentLogger } from '../../../core/log.js';
import { Tags } from '../../../core/schema/tags.js';
import { createEbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import type { Host } from '../../../host/host.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { resolveNodeIdentity } from '../../../aws/identity.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { SnapshotStore } from '../../../snapshot/snapshot-store.js';
import { asRoot } from '../../helpers/as-root.js';
import { CLUSTER, ctx, startEbsWorld, until, type EbsWorld } from './ebs-world.js';

const TESTS_MIN_INTERVAL = { backupMinIntervalMs: 1000 };
const options = (extra: Record<string, string>) => parseOptions({ backing: 'relocatable', size: '1', ...extra }, 'relocatable', undefined, TESTS_MIN_INTERVAL).options;

/**
 * What happened, in the order it happened: the host's freeze and thaw, and a writer's writes. An
 * order, not clock readings: the test asserts what came between, never how long anything took.
 */
type Event = 'frozen' | 'thawing' | { write: number; at: 'start' | 'end' };

/** The real host, recording when the filesystem was frozen and when its thaw began (withLog keeps the recording). */
function recordingFreezes(real: Host, events: Event[]): Host {
  return {
    ...real,
    freeze: async (mp) => {
      await real.freeze(mp);
      events.push('frozen');
    },
    thaw: async (mp) => {
      events.push('thawing');
      await real.thaw(mp);
    },
    withLog: (l) => recordingFreezes(real.withLog(l), events),
  };
}

asRoot('scheduled backups (issue 17.3)', () => {
  let world: EbsWorld;

  beforeAll(async () => {
    world = await startEbsWorld('backups');
  });

  afterAll(async () => {
    // A test that failed mid-freeze must not leave a filesystem frozen: umount would hang on it.
    for (const node of world.nodes) {
      for (const m of await node.host.mounts()) if (m.target.startsWith(node.mountRoot)) await node.host.thaw(m.target).catch(() => undefined);
    }
    await world.close();
  });

  async function backupsOf(name: string) {
    const out = await world.ec2.send(
      new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${Tags.volume}`, Values: [name] }, { Name: `tag:${Tags.snapshotReason}`, Values: ['backup'] }] }),
    );
    return out.Snapshots ?? [];
  }

  test('a mounted volume is backed up every interval; backupretain of them are kept, operator snapshots never go', async () => {
    const node = await world.startNode('us-east-1a', { backups: { tickMs: 100 } });
    await node.driver.create('sched', options({ backup: '1s', backupretain: '2' }), ctx('sched'));
    const mp = await node.driver.mount('sched', ctx('sched'));
    await appendFile(path.join(mp, 'data'), 'first\n');
    const store = new SnapshotStore({ ec2: world.ec2, counter: world.counter, cluster: CLUSTER, pollInitialMs: 20 });
    const [volume] = await world.volumesNamed('sched');
    const operator = await store.create({ id: volume!.VolumeId!, name: 'sched', generation: 1, lastAttach: undefined } as never, 'operator', ctx('sched'));

    const started = new Set<string>();
    await until('four backups taken', async () => {
      for (const s of await backupsOf('sched')) started.add(s.SnapshotId!);
      return started.size >= 4;
    }, 20_000);
    await node.driver.unmount('sched', ctx('sched'));
    await until('retention down to backupretain', async () => (await backupsOf('sched')).filter((s) => s.State === 'completed').length <= 2, 5000);

    const kept = await backupsOf('sched');
    expect(kept.filter((s) => s.State === 'completed')).toHaveLength(2);
    // Taken while mounted: none claims to hold the whole attachment (no covers-attach).
    expect(kept.flatMap((s) => s.Tags ?? []).filter((t) => t.Key === Tags.coversAttach)).toEqual([]);
    expect(await store.find(operator.id, ctx('sched'))).toBeDefined();
  }, 40_000);

  test('a detached volume changed since its newest backup is backed up once by the node that unmounted it', async () => {
    const node = await world.startNode('us-east-1a', { backups: { tickMs: 100 } });
    await node.driver.create('idle', options({ backup: '1s' }), ctx('idle'));
    const mp = await node.driver.mount('idle', ctx('idle'));
    await appendFile(path.join(mp, 'data'), 'written\n');
    await node.driver.unmount('idle', ctx('idle'));
    await until('a backup of the detached volume', async () => (await backupsOf('idle')).some((s) => s.Tags?.some((t) => t.Key === Tags.coversAttach)), 10_000);
    await delay(2500); // more than two intervals: nothing changed, so no second backup
    // Only the backups of the detached volume (covers-attach): a slow machine may also have taken one
    // while it was mounted, which is the scheduled backup, not this one.
    const detached = (await backupsOf('idle')).filter((s) => s.Tags?.some((t) => t.Key === Tags.coversAttach));
    expect(detached).toHaveLength(1);
  }, 30_000);

  test('the freeze spans only the CreateSnapshot: a writer pauses inside it and never fails', async () => {
    const events: Event[] = [];
    const base = await world.startNode('us-east-1a');
    const holdMs = 700;
    const driver = createEbsDriver({
      ec2: world.ec2, counter: world.counter, log: silentLogger, cluster: CLUSTER, mountRoot: base.mountRoot,
      identity: await resolveNodeIdentity({ imdsEndpoint: world.lc.imdsEndpoint(base.instanceId) }),
      host: recordingFreezes(base.host, events),
      fenceAfterMs: 1500, heartbeatIntervalMs: 300, pollInitialMs: 20, cacheTtlMs: 2000, retry: { minDelayMs: 20, maxDelayMs: 200, factor: 2 },
      // Holds the filesystem frozen a while, as a slow CreateSnapshot would.
      backups: { tickMs: 100, whileFrozen: () => delay(holdMs) },
    });
    await base.driver.stop();
    driver.start();
    try {
      await driver.create('frozen', options({ backup: '1s' }), ctx('frozen'));
      const mp = await driver.mount('frozen', ctx('frozen'));
      const file = await open(path.join(mp, 'log'), 'a');
      try {
        const stopAt = Date.now() + 4000;
        for (let i = 0; Date.now() < stopAt; i++) {
          events.push({ write: i, at: 'start' });
          await file.write(`line ${i}\n`);
          await file.sync();
          events.push({ write: i, at: 'end' });
        }
      } finally {
        await file.close();
      }
      await driver.unmount('frozen', ctx('frozen'));
      const frozen = events.indexOf('frozen');
      const thawing = events.indexOf('thawing');
      expect(frozen).toBeGreaterThanOrEqual(0);
      expect(thawing).toBeGreaterThan(frozen);
      const during = events.slice(frozen + 1, thawing);
      // Nothing is written while frozen; a write that met the freeze waited for the thaw and went through.
      expect(during.filter((e) => typeof e === 'object' && e.at === 'end')).toEqual([]);
      // The writer never stops, so the last write started before the thaw is the one the freeze held.
      const paused = events.slice(0, thawing).filter((e): e is { write: number; at: 'start' } => typeof e === 'object' && e.at === 'start').at(-1);
      expect(events.slice(thawing).some((e) => typeof e === 'object' && e.write === paused?.write && e.at === 'end')).toBe(true);
      expect(await backupsOf('frozen')).not.toHaveLength(0);
    } finally {
      await driver.stop();
    }
  }, 40_000);

  test('a filesystem left frozen by a plugin killed between freeze and thaw is thawed when the driver starts', async () => {
    const node = await world.startNode('us-east-1b');
    await node.driver.create('killed', options({}), ctx('killed'));
    const mp = await node.driver.mount('killed', ctx('killed'));
    await node.driver.stop();
    // The kernel keeps a freeze after the process that asked for it dies: kill -9 it in between.
    const freezer = spawn('sh', ['-c', 'fsfreeze -f "$1" && echo frozen && exec sleep 600', 'freezer', mp], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      freezer.stdout!.on('data', () => resolve());
      freezer.on('exit', (code) => reject(new Error(`fsfreeze exited ${code}`)));
    });
    freezer.kill('SIGKILL');
    let written = false;
    const writer = appendFile(path.join(mp, 'after-kill'), 'x').then(() => (written = true));
    await delay(500);
    expect(written).toBe(false); // the writer hangs on the frozen filesystem

    const restarted = createEbsDriver({
      ec2: world.ec2, counter: world.counter, log: silentLogger, cluster: CLUSTER, mountRoot: node.mountRoot,
      identity: await resolveNodeIdentity({ imdsEndpoint: world.lc.imdsEndpoint(node.instanceId) }),
      host: createLinuxHost({ deviceDir: world.lc.deviceDir(node.instanceId) }),
      fenceAfterMs: 1500, heartbeatIntervalMs: 300, pollInitialMs: 20,
    });
    restarted.start();
    try {
      await writer;
      expect(written).toBe(true);
      await restarted.unmount('killed', ctx('killed'));
    } finally {
      await restarted.stop();
    }
  }, 30_000);
});
