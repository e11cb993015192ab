/**
 * Failures the fault matrix (test/faults/cloud-faults.test.ts) met with its retries off
 * (STOWAGE_FAULTS_NO_RETRY=1), each reduced to the driver on a fake EC2: no wall-time race, no
 * localcloud, the same answer every run. Each Mount case failed before its fix (5e03d86 for the
 * first three, de42705 for the two repeated Mounts) and stays as its regression test; the Remove
 * case at the end is still open.
 */
import { DescribeSnapshotsCommand, DescribeVolumesCommand, type DescribeVolumesCommandOutput, type EC2Client } from '@aws-sdk/client-ec2';
import type { EbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import { StowageError } from '../../../core/errors.js';
import { ec2Error } from '../aws/ec2-error.js';
import { driverWorld, ME, type DriverWorld } from './driver-world.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ZONE = 'us-east-1a';
const GP3 = gp3Options(10);

let world: DriverWorld;
let driver: EbsDriver | undefined;

type View = (out: DescribeVolumesCommandOutput) => DescribeVolumesCommandOutput;
/** Set after each test: work a wedged Mount left running ends at its next call instead of reaching past the mock. */
let closed = false;

/**
 * The fake EC2 behind a client whose next DescribeVolumes answer the past, one queued view each
 * (EC2 is eventually consistent: a Describe may show an older state than the one before it).
 */
function laggingEc2(past: View[]): EC2Client {
  const real = world.ec2.client;
  return {
    send: async (command: unknown) => {
      if (closed) throw Object.assign(new Error('the test is over'), { name: 'UnauthorizedOperation' });
      const out = await real.send(command as DescribeVolumesCommand);
      if (!(command instanceof DescribeVolumesCommand)) return out;
      return past.shift()?.(out) ?? out;
    },
  } as unknown as EC2Client;
}

function ctx(name: string, ms = 3000) {
  return { deadline: Date.now() + ms, log: world.log.child({ volume: name }) };
}

/** What the Mount answered: the mountpoint, or its error as the caller (dockerd, Swarm) reads it. */
async function answer(p: Promise<string>): Promise<string | { kind: string; retryable: boolean; message: string }> {
  try {
    return await p;
  } catch (err) {
    if (!(err instanceof StowageError)) throw err;
    return { kind: err.kind, retryable: err.retryable, message: err.message };
  }
}

beforeEach(() => {
  world = driverWorld(ZONE);
  closed = false;
});
afterEach(async () => {
  closed = true;
  // A Mount still waiting polls within a few ms; its next call fails and ends it.
  await new Promise((resolve) => setTimeout(resolve, 100));
  await driver?.stop();
  driver = undefined;
  world.ec2.mock.restore();
});

describe('a Mount right after its Create, on an EC2 whose Describes lag', () => {
  /**
   * Seen as `volume fenced does not exist` (not retryable) on the first Mount of the "holder
   * stopped" cell, 70 ms after the Create answered: the Mount's look-up saw the new volume still
   * `creating` (a view up to 300 ms old), and the waiter's next DescribeVolumes, drawing an older
   * moment still, did not show it at all. Mounter.mount's wait for the end of `creating` counts
   * "not shown" as "no longer creating", and EbsCalls.record then answers VolumeNotFoundError.
   * EC2 makes no promise that a later Describe is newer than an earlier one.
   */
  test('the look-up shows it creating, the next Describe not at all: the Mount must not answer "does not exist"', async () => {
    const past: View[] = [];
    driver = world.makeDriver({ ec2: laggingEc2(past) });
    await driver.create('data', GP3, ctx('data'));
    const id = [...world.ec2.volumes.keys()][0]!;
    expect(world.ec2.volumes.get(id)!.State).toBe('available');

    // The next two DescribeVolumes answer the past: the volume being created, then before it was.
    past.push(
      (out) => ({ ...out, Volumes: (out.Volumes ?? []).map((v) => ({ ...v, State: 'creating' as const })) }),
      (out) => ({ ...out, Volumes: [] }),
    );
    const got = await answer(driver.mount('data', ctx('data')));
    expect(past).toHaveLength(0);
    // Before 5e03d86: { kind: 'not-found', retryable: false, message: 'volume data does not exist' }.
    expect(got).toBe('/mnt/stowage/data');
  });
});

describe('an attachment stuck in attaching, when the wait for it ends a moment before the wall clock says so', () => {
  /**
   * Node fires a timer by its loop clock, which can trail Date.now() by a millisecond or more, and
   * the wall clock itself can step back (NTP): a wait given `stuckAt - Date.now()` ms may end while
   * Date.now() < stuckAt. Seen in the "stuck attaching" cell: the wait for the attachment timed out
   * at 17:00:38.422 with stuckAt ≈ 38.423, so Attacher.attachOnFreeName took the stuck attachment
   * for a wait that ended early, rethrew the WaitTimeoutError, and did not undo it.
   */
  function timersFiringEarly(ms: number): () => void {
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) =>
      realSetTimeout(fn, Math.max(0, (delay ?? 0) - ms), ...args)) as typeof setTimeout;
    return () => {
      globalThis.setTimeout = realSetTimeout;
    };
  }

  test('the first Mount still undoes it and attaches on another name', async () => {
    const id = world.ec2.addVolume('data', ZONE);
    world.ec2.stuckDevices.add('/dev/xvdba');
    driver = world.makeDriver({ stuckAttachMs: 150 });
    const restore = timersFiringEarly(3);
    let got;
    try {
      got = await answer(driver.mount('data', ctx('data')));
    } finally {
      restore();
    }
    // Before 5e03d86: { kind: 'wait-timeout', retryable: true, message: 'timed out waiting for vol-… attached to i-… as /dev/xvdba' },
    // and the stuck attachment stays.
    expect(got).toBe('/mnt/stowage/data');
    expect(world.ec2.volumes.get(id)!.Attachments).toEqual([expect.objectContaining({ InstanceId: ME, State: 'attached' })]);
    expect(world.ec2.volumes.get(id)!.Attachments![0]!.Device).not.toBe('/dev/xvdba');
  });

  /**
   * What the matrix saw next: every retry of the Mount found the attachment to its own instance
   * still `attaching` and joined a wait for it (Mounter.mount, "Attached here already") that lasts
   * BACKGROUND_LIMIT_MS (10 min) and never undoes it. The volume is wedged until someone
   * force-detaches it by hand; a restarted plugin inherits the same wedge (docs/reliability.md,
   * "A stuck attachment inherited across a restart").
   */
  test('a Mount that finds this instance\'s own attachment stuck in attaching undoes it after stuckAttachMs', async () => {
    const id = world.ec2.addVolume('data', ZONE);
    world.ec2.stuckDevices.add('/dev/xvdba');
    // Left by an earlier Mount of this node (or of the plugin before a restart), stuck since.
    world.ec2.attachNow(id, ME, '/dev/xvdba', 'attaching');
    world.ec2.volumes.get(id)!.Attachments![0]!.AttachTime = new Date(Date.now() - 1000);
    driver = world.makeDriver({ stuckAttachMs: 150 });

    // Three seconds to answer: twenty times stuckAttachMs.
    const got = await answer(driver.mount('data', ctx('data', 3000)));
    // Before 5e03d86: { kind: 'pending', retryable: true, message: 'mount not finished yet: still waiting for vol-… attached to i-…; …' }, for 10 min.
    expect(got).toBe('/mnt/stowage/data');
    expect(world.ec2.volumes.get(id)!.Attachments![0]!.Device).not.toBe('/dev/xvdba');
  });
});

describe('a Mount repeated the moment the previous one finished, on an EC2 whose Describes lag', () => {
  /**
   * Seen in the "stuck attaching" cell: the caller's third Mount came 13 ms after the work its
   * first one started had mounted the volume (as /dev/xvdbd). Its look-up read EC2 as it was before
   * that attach, so it attached again, as /dev/xvdbe; EC2 refused (VolumeInUse), and
   * Attacher.attachedAs, which counts the volume ours only if it is attached here under the name
   * just asked for, answered `volume stuck was attached to another instance meanwhile`. It is
   * attached to this instance, and mounted here.
   */
  test('the look-up shows it not attached yet: the Mount answers the mountpoint, not "attached to another instance"', async () => {
    const past: View[] = [];
    driver = world.makeDriver({ ec2: laggingEc2(past) });
    world.ec2.addVolume('data', ZONE);
    const before = structuredClone([...world.ec2.volumes.values()]);
    await expect(driver.mount('data', ctx('data'))).resolves.toBe('/mnt/stowage/data');

    // The next DescribeVolumes answers EC2 as it was before that Mount attached the volume.
    past.push((out) => ({ ...out, Volumes: structuredClone(before) }));
    const got = await answer(driver.mount('data', ctx('data')));
    expect(past).toHaveLength(0);
    // Before de42705: { kind: 'busy', retryable: true, message: 'volume data was attached to another instance meanwhile' }.
    expect(got).toBe('/mnt/stowage/data');
  });

  /**
   * The same lagging look-up a moment later in that cell's sequence: the earlier Mount undid a stuck
   * attachment (force-detach: `detaching` on another name) and then attached and mounted the volume
   * anew. A look-up that still shows the undone attachment `detaching` sends Mounter.mount to wait
   * for "detached from this instance", which the attachment it mounted never becomes: the Mount
   * answers Pending, and each retry joins that wait, for BACKGROUND_LIMIT_MS (10 min).
   */
  test('the look-up shows the undone attachment still detaching: the Mount answers the mountpoint, not Pending for 10 minutes', async () => {
    const past: View[] = [];
    driver = world.makeDriver({ ec2: laggingEc2(past) });
    world.ec2.addVolume('data', ZONE);
    await expect(driver.mount('data', ctx('data'))).resolves.toBe('/mnt/stowage/data');

    // The next DescribeVolumes shows the attachment the earlier Mount undid, on another name, still detaching.
    past.push((out) => ({
      ...out,
      Volumes: structuredClone(out.Volumes ?? []).map((v) => ({ ...v, Attachments: (v.Attachments ?? []).map((a) => ({ ...a, Device: '/dev/xvdbz', State: 'detaching' as const })) })),
    }));
    const got = await answer(driver.mount('data', ctx('data', 3000)));
    expect(past).toHaveLength(0);
    // Before de42705: { kind: 'pending', retryable: true, message: 'mount not finished yet: still waiting for vol-… detached from i-…; …' }.
    expect(got).toBe('/mnt/stowage/data');
  });
});

describe('a Remove whose DeleteVolume went through, throttled afterwards', () => {
  /**
   * Seen in the "50% throttling" cell: the Remove's look-up was throttled for 20 s, to its deadline;
   * its DeleteVolume (a first attempt goes out even then) deleted the volume, and its first listing
   * of the moving aids deleted the unmount snapshot. The second listing, 1.5 s later
   * (AID_SETTLE_MS), was throttled once, past the deadline, so VolumeRemover.remove answered
   * `DescribeSnapshots failed: EC2 kept throttling the calls until the deadline` (retryable) for a
   * volume it had deleted. The caller retried, and the retry answered `volume same-05-0 does not
   * exist`, not retryable: `docker volume rm` fails twice for a volume that is gone, and a moving
   * aid the second listing would have found is left behind, billed.
   */
  test('answers success: the cleanup of its moving aids after the delete does not fail the Remove', async () => {
    // The second listing is throttled once, as in the matrix.
    let listings = 0;
    const real = world.ec2.client;
    const throttledAfterFirstListing = {
      send: async (command: unknown) => {
        if (closed) throw Object.assign(new Error('the test is over'), { name: 'UnauthorizedOperation' });
        if (command instanceof DescribeSnapshotsCommand && ++listings === 2) throw ec2Error('RequestLimitExceeded', 503, 'Request limit exceeded.');
        return real.send(command as DescribeSnapshotsCommand);
      },
    } as unknown as EC2Client;
    driver = world.makeDriver({ ec2: throttledAfterFirstListing });
    const id = world.ec2.addVolume('data', ZONE);

    // The deadline passes during the settle before the second listing, as it did after 20 s of throttling.
    let outcome: unknown = 'removed';
    await driver.remove('data', ctx('data', 1000)).catch((err: unknown) => {
      outcome = err instanceof StowageError ? { kind: err.kind, retryable: err.retryable, message: err.message } : err;
    });
    expect(world.ec2.volumes.has(id)).toBe(false);
    expect(listings).toBeGreaterThanOrEqual(2);
    // Today: { kind: 'cloud', retryable: true, message: 'DescribeSnapshots failed: EC2 kept throttling the calls until the deadline: …' },
    // and the Remove the caller repeats answers { kind: 'not-found', retryable: false, message: 'volume data does not exist' }.
    expect(outcome).toBe('removed');
  });
});
