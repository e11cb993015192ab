import { StowageError } from '../errors.js';
import { interval, kmsKeyId, mountOptions, oneOf, octalMode, region, snapshotId, VOLUME_NAME, wholeNumber } from '../option-rules.js';
import { DEFAULT_BACKUP_RETAIN, FILESYSTEMS, INIT_RATE, type Filesystem } from '../volume-options.js';
import { Tags } from './tags.js';

const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;
const GENERATION = /^[1-9][0-9]{0,8}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** A relocatable volume's options and marks as its tags record them, each checked by the Create rules. */
export interface TaggedValues {
  generation: number;
  fs: Filesystem;
  mountopts: string[];
  kmskeyid: string | undefined;
  snapshot: string | undefined;
  snapshotCurrent: string | undefined;
  movedFrom: string | undefined;
  backup: string | undefined;
  backupRetain: number;
  drRegion: string | undefined;
  initRate: number | undefined;
  rootOwner: { uid: number; gid: number; mode: string };
  /** MiB the filesystem spans, as the node holding it last measured. */
  filesystemMiB: number | undefined;
  /** When `stowage modify` last modified it. */
  modifiedAt: Date | undefined;
  /** Tags whose values break the rules (`stowage:mountopts="nosuid=0": …`): such a volume is not mounted. */
  problems: string[];
}

/**
 * Tags are input (invariant 11): anyone allowed to tag the volume may write them, so each value is
 * checked by the rule its option has at Create. A value that breaks it is reported, and a safe
 * default stands in so that List and Get still show the volume (a missing one would make dockerd
 * create a duplicate).
 */
export function readTaggedValues(name: string | undefined, tags: ReadonlyMap<string, string>): TaggedValues {
  const problems: string[] = [];
  const checked = <T>(key: string, fallback: T, rule: (value: string) => T): T => {
    const value = tags.get(key);
    if (value === undefined || value === '') return fallback;
    try {
      return rule(value);
    } catch (err) {
      problems.push(`${key}=${JSON.stringify(value.slice(0, 100))}: ${err instanceof StowageError ? err.message : String(err)}`);
      return fallback;
    }
  };
  if (name !== undefined && !VOLUME_NAME.test(name)) problems.push(`${Tags.volume}=${JSON.stringify(name.slice(0, 100))}: not a valid volume name`);
  const fs = checked<Filesystem>(Tags.fs, 'ext4', (v) => oneOf(Tags.fs, v, FILESYSTEMS));
  const pattern = (what: string, re: RegExp) => (v: string) => {
    if (!re.test(v)) throw new Error(`not ${what}`);
    return v;
  };
  return {
    generation: checked(Tags.generation, 1, (v) => Number(pattern('a generation (1, 2, …)', GENERATION)(v))),
    fs,
    mountopts: checked(Tags.mountopts, [], (v) => mountOptions(Tags.mountopts, v, fs)),
    kmskeyid: checked(Tags.kmskeyid, undefined, (v) => kmsKeyId(Tags.kmskeyid, v)),
    snapshot: checked(Tags.snapshot, undefined, (v) => snapshotId(Tags.snapshot, v)),
    snapshotCurrent: checked(Tags.snapshotCurrent, undefined, (v) => snapshotId(Tags.snapshotCurrent, v)),
    movedFrom: checked(Tags.movedFrom, undefined, pattern('a volume id', VOLUME_ID)),
    backup: checked(Tags.backup, undefined, (v) => (interval(Tags.backup, v, 1000), v)),
    backupRetain: checked(Tags.backupRetain, DEFAULT_BACKUP_RETAIN, (v) => wholeNumber(Tags.backupRetain, v, 1, 1000, 'backups kept')),
    drRegion: checked(Tags.drRegion, undefined, (v) => region(Tags.drRegion, v)),
    initRate: checked(Tags.initRate, undefined, (v) => wholeNumber(Tags.initRate, v, INIT_RATE.min, INIT_RATE.max, 'MiB/s')),
    rootOwner: checked(Tags.rootOwner, { uid: 0, gid: 0, mode: '0755' }, (v) => {
      const [uid, gid, mode, ...rest] = v.split(':');
      if (uid === undefined || gid === undefined || mode === undefined || rest.length > 0) throw new Error('not uid:gid:mode');
      return {
        uid: wholeNumber(Tags.rootOwner, uid, 0, 4294967294, '(uid)'),
        gid: wholeNumber(Tags.rootOwner, gid, 0, 4294967294, '(gid)'),
        mode: octalMode(Tags.rootOwner, mode),
      };
    }),
    filesystemMiB: checked(Tags.filesystemMiB, undefined, (v) => wholeNumber(Tags.filesystemMiB, v, 1, 2 ** 26, 'MiB')),
    modifiedAt: checked(Tags.modifiedAt, undefined, (v) => {
      const at = new Date(pattern('an ISO 8601 time', ISO_TIME)(v));
      if (Number.isNaN(at.getTime())) throw new Error('not an ISO 8601 time');
      return at;
    }),
    problems,
  };
}
