import type { Tag } from '@aws-sdk/client-ec2';
import { checkEbsConfig, EBS_ONLY, type EbsConfig } from '../ebs-config.js';
import { StowageError } from '../errors.js';
import { taggedOptionsOf, volumeTags, type EbsVolume } from './ebs-volume.js';
import { snapshotTags } from './snapshot-record.js';
import { readTaggedValues, type TaggedValues } from './tag-values.js';
import { Tags } from './tags.js';

/**
 * What a snapshot must carry so that its volume can be made again once the volume itself is gone
 * (removed by `docker volume rm`; backups stay): the options the volume was created with, and its
 * EBS type, IOPS and throughput. Not its KMS key (the snapshot names its own) nor the snapshot it
 * was first made from.
 */
export function restorableTags(cluster: string, volume: EbsVolume): Tag[] {
  const own = new Set(snapshotTags(cluster, volume, 'backup').map((t) => t.Key));
  const options = volumeTags(cluster, volume.name, volume.generation, { ...taggedOptionsOf(volume), kmskeyid: undefined, snapshot: undefined });
  return [...options.filter((t) => !own.has(t.Key)), ...ebsConfigTags(volume)];
}

/** The volume's EBS type, IOPS and throughput, which EC2's snapshot does not record (backups, DR copies). */
export function ebsConfigTags(volume: EbsVolume): Tag[] {
  return [
    { Key: Tags.ebsType, Value: volume.type },
    ...(volume.iops !== undefined ? [{ Key: Tags.ebsIops, Value: String(volume.iops) }] : []),
    ...(volume.throughput !== undefined ? [{ Key: Tags.ebsThroughput, Value: String(volume.throughput) }] : []),
  ];
}

/** A snapshot's record of its volume, read back. Tags are input (invariant 11): every value is checked as at Create. */
export interface Restorable {
  config: EbsConfig | undefined;
  values: TaggedValues;
}

const TAG_NAMES = { size: 'the snapshot size', ebstype: Tags.ebsType, iops: Tags.ebsIops, throughput: Tags.ebsThroughput, giveSize: 'restore it into a bigger volume' };

/** undefined: the snapshot records no volume (taken by an earlier version, or not a backup). */
export function readRestorable(tags: ReadonlyMap<string, string>, volumeSizeGiB: number | undefined): Restorable | undefined {
  const type = tags.get(Tags.ebsType);
  if (type === undefined) return undefined;
  const values = readTaggedValues(tags.get(Tags.volume), tags);
  let config: EbsConfig | undefined;
  try {
    config = checkEbsConfig({ size: String(volumeSizeGiB ?? ''), ebstype: type, iops: tags.get(Tags.ebsIops), throughput: tags.get(Tags.ebsThroughput) }, EBS_ONLY, undefined, TAG_NAMES);
  } catch (err) {
    values.problems.push(err instanceof StowageError ? err.message : String(err));
  }
  return { config, values };
}
