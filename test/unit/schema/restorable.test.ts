import { readRestorable, restorableTags } from '../../../core/schema/restorable.js';
import { snapshotTags } from '../../../core/schema/snapshot-record.js';
import { toEbsVolume } from '../../../core/schema/ebs-volume.js';

const volume = toEbsVolume(
  {
    VolumeId: 'vol-0123456789abcdef0', AvailabilityZone: 'us-east-1a', Size: 20, VolumeType: 'gp3', Iops: 4000, Throughput: 250, Encrypted: true, KmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abc', State: 'available',
    Tags: [
      { Key: 'stowage:cluster', Value: 'prod' }, { Key: 'stowage:volume', Value: 'pg' }, { Key: 'stowage:backing', Value: 'relocatable' }, { Key: 'stowage:generation', Value: '3' },
      { Key: 'stowage:fs', Value: 'xfs' }, { Key: 'stowage:mountopts', Value: 'noatime' }, { Key: 'stowage:backup', Value: '6h' }, { Key: 'stowage:root-owner', Value: '999:999:0700' },
      { Key: 'stowage:kmskeyid', Value: 'arn:aws:kms:us-east-1:111122223333:key/abc' }, { Key: 'stowage:snapshot', Value: 'snap-0123456789abcdef0' },
    ],
  },
  'prod',
)!;

const asMap = (tags: { Key?: string; Value?: string }[]) => new Map(tags.map((t) => [t.Key!, t.Value!]));

describe('what a backup records of its volume, for a restore once the volume is gone', () => {
  test('the options and the EBS type, IOPS and throughput; never a key the snapshot tags already carry, nor the KMS key or first snapshot', () => {
    const tags = restorableTags('prod', volume);
    const own = new Set(snapshotTags('prod', volume, 'backup').map((t) => t.Key));
    expect(tags.filter((t) => own.has(t.Key))).toEqual([]);
    expect(asMap(tags)).toEqual(new Map([
      ['stowage:fs', 'xfs'], ['stowage:mountopts', 'noatime'], ['stowage:backup', '6h'], ['stowage:backup-retain', '7'], ['stowage:root-owner', '999:999:0700'],
      ['stowage:ebs-type', 'gp3'], ['stowage:ebs-iops', '4000'], ['stowage:ebs-throughput', '250'],
    ]));
  });

  test('read back: the same volume, sized as the snapshot', () => {
    const read = readRestorable(asMap([...snapshotTags('prod', volume, 'backup'), ...restorableTags('prod', volume)]), 20)!;
    expect(read.config).toEqual({ size: 20, ebstype: 'gp3', iops: 4000, throughput: 250 });
    expect(read.values).toMatchObject({ fs: 'xfs', mountopts: ['noatime'], backup: '6h', rootOwner: { uid: 999, gid: 999, mode: '0700' }, problems: [] });
  });

  test('tags are input: a value the rules refuse is a problem named, never used', () => {
    const tags = asMap([...snapshotTags('prod', volume, 'backup'), ...restorableTags('prod', volume)]);
    tags.set('stowage:ebs-iops', '900000');
    tags.set('stowage:mountopts', 'exec,suid,loop');
    const read = readRestorable(tags, 20)!;
    expect(read.config).toBeUndefined();
    expect(read.values.problems.join('\n')).toMatch(/stowage:ebs-iops/);
    expect(read.values.problems.join('\n')).toMatch(/stowage:mountopts/);
  });

  test('a snapshot that records no volume (an earlier version, a move aid) is not restorable by itself', () => {
    expect(readRestorable(asMap(snapshotTags('prod', volume, 'move')), 20)).toBeUndefined();
  });
});
