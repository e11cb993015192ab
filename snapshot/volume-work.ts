import type { EC2Client } from '@aws-sdk/client-ec2';
import type { RetryPolicy } from '../aws/call.js';
import type { CallCounter } from '../aws/call-counter.js';
import type { VolumeReads } from '../aws/volume-reads.js';
import type { VolumeWaiter } from '../aws/volume-waiter.js';
import type { SnapshotStore } from './snapshot-store.js';

/** What the workers that make a volume from a snapshot (the mover, the restorer) share. */
export interface VolumeWorkDeps {
  ec2: EC2Client;
  counter: CallCounter;
  cluster: string;
  snapshots: SnapshotStore;
  /** The fresh view a decision is taken on (read barrier). */
  reads: VolumeReads;
  /** Shared with the driver, so waits of both batch into one DescribeVolumes. */
  waiter: VolumeWaiter;
  retry?: RetryPolicy;
}
