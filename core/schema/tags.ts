/**
 * Every tag key Stowage writes or reads on AWS resources: the cluster's source of truth (DESIGN.md
 * "Tags"), the one contract that must not drift between nodes and versions. No other source file
 * spells a `stowage:` key. One line per key: on what, who writes it and when, who reads it.
 */
export const Tags = {
  // ---- on volumes, snapshots, access points and (embedded) file systems ----------------------
  /** All resources. Written at create (driver, mover, snapshot store, CLI); read by every lookup. Never changed. */
  cluster: 'stowage:cluster',
  /** All resources. Written at create; read by every lookup by name. Never changed. */
  volume: 'stowage:volume',
  /** Volumes, snapshots, access points. Written at create; read by the catalogs to pick the driver. */
  backing: 'stowage:backing',
  /** Volumes and snapshots. Written at create (1, or source + 1 by a move); read by pickCurrent and retention. */
  generation: 'stowage:generation',

  // ---- on relocatable volumes ----------------------------------------------------------------
  /** Written at create (driver, mover copies it); read before mkfs and mount. */
  fs: 'stowage:fs',
  /** Written at create (driver, mover copies it); read at mount, through the options' allow-list. */
  mountopts: 'stowage:mountopts',
  /** Written at create, as the user gave it (EC2 reports an ARN); read to compare a repeated Create. */
  kmskeyid: 'stowage:kmskeyid',
  /** Written at create from `--opt snapshot`; read to compare a repeated Create. */
  snapshot: 'stowage:snapshot',
  /**
   * A snapshot that holds exactly the volume's current data. Written after create by the snapshot
   * store (after a clean detach) and at create by the mover (the copy's source snapshot); deleted by
   * the driver before every attach; read by the mover to skip a snapshot.
   */
  snapshotCurrent: 'stowage:snapshot-current',
  /**
   * Created empty, never attached. Written at create; deleted before the first attach; read by the
   * mover, which re-creates a volume that is blank and not `formatted` without a snapshot.
   */
  blank: 'stowage:blank',
  /**
   * Invariant 9: the volume was formatted once and never may be again. Written after create by the
   * node that ran the first mkfs, before the filesystem is mounted; read before every mkfs.
   */
  formatted: 'stowage:formatted',
  /**
   * Which attachment's writes the volume holds: the EC2 AttachTime of its latest attachment (a
   * random mark where EC2 gives none). Written after create by the mounting node, confirmed before
   * the filesystem is mounted (so before any write of that attachment); a move's copy is created
   * with its source's. Read by the mover, which trusts a snapshot only if it covers this attachment.
   */
  lastAttach: 'stowage:last-attach',
  /**
   * A random value the mover writes on the source, then reads until a Describe shows it: that read
   * is no older than the write, so the mover decides on a view that holds every earlier change
   * (EC2 is eventually consistent). Written after create by the mover; read only by it.
   */
  readBarrier: 'stowage:read-barrier',
  /**
   * MiB the filesystem spans, as the node holding the volume measured it. Written after create by
   * that node after the first mount and after each growth (a modification made the volume bigger);
   * read by Status and `stowage inspect`.
   */
  filesystemMiB: 'stowage:fs-size-mib',
  /**
   * When `stowage modify` last modified the volume (ISO 8601). Written after create by that command
   * once EC2 took the modification; read by Status, which asks EC2 for the modification's progress
   * only of volumes modified lately (Get stays a read of the cache for every other volume).
   */
  modifiedAt: 'stowage:modified-at',
  /** Scheduled backups: interval (`6h`), backups kept, DR region, initialization rate, root owner `uid:gid:mode`. Written at create; a move's copy carries them on. */
  backup: 'stowage:backup',
  backupRetain: 'stowage:backup-retain',
  drRegion: 'stowage:dr-region',
  initRate: 'stowage:initrate',
  rootOwner: 'stowage:root-owner',
  /** A copy made by a cross-zone move: its source. Written at create by the mover; read by pickCurrent and gc. */
  movedFrom: 'stowage:moved-from',

  // ---- on snapshots --------------------------------------------------------------------------
  /** The volume id whose data it holds. Written at create (snapshot store, CLI); read by the mover. */
  sourceVolume: 'stowage:source-volume',
  /** The source's `last-attach` when it was taken: the attachment whose writes it holds. Written at create; read by the mover. */
  coversAttach: 'stowage:covers-attach',
  /** Why it was taken (SnapshotReason). Written at create; read by retention, Remove and gc. */
  snapshotReason: 'stowage:snapshot-reason',
  /**
   * On the snapshot `stowage restore` keeps of a volume it replaces: the snapshot it was replaced
   * from. Written at create by restore (reason `operator`: only a person deletes it); read by a
   * rerun of that restore, which resumes instead of snapshotting again.
   */
  replacedBy: 'stowage:replaced-by',
  /**
   * DR copies (reason `dr-copy`) in the DR region: the region and backup they were copied from, and
   * that backup's start time (ISO 8601), the moment whose data the copy holds (its RPO). Written at
   * create by copyToDrRegion, with the volume's option tags (fs, mountopts, backup, …) so that
   * `stowage restore --region` rebuilds the volume without its lost region; read by `stowage dr
   * status`, `stowage restore --region` and DR retention.
   */
  sourceRegion: 'stowage:source-region',
  sourceSnapshot: 'stowage:source-snapshot',
  takenAt: 'stowage:taken-at',
  /**
   * On backups and operator snapshots, which outlive their volume (Remove leaves them): the volume's
   * EBS type, IOPS and throughput, beside its option tags (fs, mountopts, backup, …). EC2's snapshot
   * records only the size. Written at create by the backup taker and `stowage snapshot`; read by
   * `stowage restore` of a name whose volume was removed.
   */
  ebsType: 'stowage:ebs-type',
  ebsIops: 'stowage:ebs-iops',
  ebsThroughput: 'stowage:ebs-throughput',

  // ---- on instances --------------------------------------------------------------------------
  /** Epoch seconds. Written by each node on its own instance every heartbeat; read by fencing. */
  heartbeat: 'stowage:heartbeat',
  /** localcloud only: the instance `npm start` made for this machine. Written and read by the CLI. */
  embeddedNode: 'stowage:embedded-node',
} as const;

export type TagKey = (typeof Tags)[keyof typeof Tags];

/** Keys written on a resource after it was created (CreateTags); the IAM policy allows only these. */
export const TAGS_WRITTEN_AFTER_CREATE: readonly TagKey[] = [Tags.snapshotCurrent, Tags.formatted, Tags.lastAttach, Tags.readBarrier, Tags.heartbeat, Tags.filesystemMiB, Tags.modifiedAt];

/** Keys Stowage deletes (DeleteTags); the IAM policy allows only these. */
export const TAGS_DELETED: readonly TagKey[] = [Tags.snapshotCurrent, Tags.blank];

/**
 * What `stowage adopt` writes on a volume made outside Stowage (docs/iam-policy-adopt.json allows
 * exactly these, with operator credentials): first the cluster tag alone (the claim), then the rest.
 */
export const TAGS_WRITTEN_BY_ADOPT: readonly TagKey[] = [
  Tags.cluster, Tags.volume, Tags.backing, Tags.generation, Tags.fs, Tags.mountopts, Tags.formatted,
];

/**
 * Written by Cloudstor/REX-Ray, read by adopt (`stowage adopt --from`); Stowage never writes them.
 * Cloudstor (docker/for-aws): `CloudstorVolumeName` holds the Docker volume name, `StackID` the MD5
 * (hex) of the AWS_STACK_ID it was installed with (for-aws#91). REX-Ray 0.3's ec2 driver: `Name`
 * holds the volume name and, when `aws.rexrayTag` is set, `rexraySet` holds that value (rexray#314).
 */
export const FOREIGN_TAGS = {
  cloudstorName: 'CloudstorVolumeName',
  cloudstorStack: 'StackID',
  rexrayName: 'Name',
  rexraySet: 'rexraySet',
} as const;

/**
 * Why a snapshot was taken. `unmount` and `move` are the plugin's means of moving a volume, which
 * move retention prunes; `operator` ones (`stowage snapshot`) are backups that only a person deletes;
 * `dr-copy` ones are backups copied to the DR region, which DR retention keeps `backupretain` of;
 * `backup` ones are the scheduled backups (`--opt backup`), of which retention keeps `backupretain`.
 */
export type SnapshotReason = 'unmount' | 'move' | 'operator' | 'dr-copy' | 'backup';
export const MOVE_REASONS: readonly SnapshotReason[] = ['unmount', 'move'];

/** The AWS console's `Name` tag Stowage gives what it creates (not part of the schema's contract). */
export function nameTag(cluster: string, name: string): { Key: string; Value: string } {
  return { Key: 'Name', Value: `stowage/${cluster}/${name}` };
}
