import { Writable } from 'node:stream';
import { CallCounter } from '../../../aws/call-counter.js';
import { createEbsDriver, type EbsDriver, type EbsDriverDeps } from '../../../drivers/ebs/ebs-driver.js';
import { createLogger, type Logger } from '../../../core/log.js';
import { FakeEc2 } from './fake-ec2.js';
import { FakeHost } from './fake-host.js';

/** The node under test, and another instance for volumes held elsewhere. */
export const ME = 'i-000000000000000aa';
export const OTHER = 'i-000000000000000bb';
/** Retries in milliseconds, so a throttled call costs a test nothing. */
export const FAST = { minDelayMs: 2, maxDelayMs: 10, factor: 2 };

/** A fake EC2 and host for the EBS driver on instance ME in `zone`, with its log lines kept. */
export interface DriverWorld {
  ec2: FakeEc2;
  host: FakeHost;
  counter: CallCounter;
  log: Logger;
  logLines: Record<string, unknown>[];
  makeDriver(overrides?: Partial<EbsDriverDeps>): EbsDriver;
}

/** Attaching a volume to ME makes its device appear on the host, and detaching takes it away, as on Nitro. */
export function driverWorld(zone: string): DriverWorld {
  const ec2 = new FakeEc2();
  const host = new FakeHost();
  const counter = new CallCounter();
  const logLines: Record<string, unknown>[] = [];
  const log = createLogger('debug', new Writable({ write: (chunk, _enc, done) => { logLines.push(JSON.parse(String(chunk))); done(); } }));
  ec2.addInstance(ME, zone);
  ec2.onAttached = (volumeId, instanceId) => {
    if (instanceId !== ME) return;
    const device = `/dev/nvme-${volumeId}`;
    host.devices.set(volumeId, device);
    // A volume restored from a snapshot holds the snapshot's filesystem, as on EBS.
    if (ec2.volumes.get(volumeId)?.SnapshotId && !host.filesystems.has(device)) host.filesystems.set(device, 'ext4');
  };
  ec2.onDetached = (volumeId, instanceId) => instanceId === ME && host.devices.delete(volumeId);
  const makeDriver = (overrides: Partial<EbsDriverDeps> = {}): EbsDriver =>
    createEbsDriver({
      ec2: ec2.client, host, counter, log,
      identity: { instanceId: ME, zone, region: 'us-east-1' },
      cluster: 'test', mountRoot: '/mnt/stowage', fenceAfterMs: 60_000,
      pollInitialMs: 5, stuckAttachMs: 150, cacheTtlMs: 60_000, retry: FAST,
      ...overrides,
    });
  return { ec2, host, counter, log, logLines, makeDriver };
}
