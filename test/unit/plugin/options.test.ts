import { conflictingKeys } from '../../../plugin/options/conflict.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { ConfigError, InvalidOptionError } from '../../../core/errors.js';
import { loadConfig } from '../../../plugin/config.js';

function refused(opts: Record<string, unknown>, backing: 'relocatable' | 'shared' = 'relocatable'): InvalidOptionError {
  try {
    parseOptions(opts, backing);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error(`options ${JSON.stringify(opts)} were accepted`);
}

describe('parseOptions', () => {
  test('fills the defaults of DESIGN.md', () => {
    const { options, given } = parseOptions({}, 'relocatable');
    expect(options).toMatchObject({ backing: 'relocatable', size: 10, ebstype: 'gp3', iops: 3000, throughput: 125, encrypted: true, fs: 'ext4', mountopts: [] });
    expect(given).toEqual([]);
    expect(parseOptions(undefined, 'shared').options).toMatchObject({ backing: 'shared', perfmode: 'generalpurpose', uid: 0, gid: 0, mode: '0755' });
  });

  test('accepts a full relocatable set', () => {
    const { options } = parseOptions({ backing: 'relocatable', size: '500', ebstype: 'io2', iops: '20000', encrypted: 'true', kmskeyid: 'alias/db', fs: 'xfs', mountopts: 'noatime,discard', snapshot: 'snap-0123456789abcdef0' }, 'shared');
    expect(options).toMatchObject({ size: 500, ebstype: 'io2', iops: 20000, fs: 'xfs', mountopts: ['noatime', 'discard'], kmskeyid: 'alias/db', snapshot: 'snap-0123456789abcdef0' });
  });

  test.each([
    [{ bogus: '1' }, 'bogus', 'unknown option'],
    [{ size: 'abc' }, 'size', 'whole number'],
    [{ size: '-1' }, 'size', 'whole number'],
    [{ size: '1.5' }, 'size', 'whole number'],
    [{ size: '20000' }, 'size', 'from 1 to 16384'],
    [{ ebstype: 'gp9' }, 'ebstype', 'gp3, gp2'],
    [{ ebstype: 'st1' }, 'size', 'from 125 to 16384'],
    [{ ebstype: 'gp2', iops: '3000' }, 'iops', 'no settable IOPS'],
    [{ size: '4', iops: '4000' }, 'iops', 'from 3000 to 3000'],
    [{ iops: '3000', throughput: '1000' }, 'throughput', 'from 125 to 750'],
    [{ encrypted: 'yes' }, 'encrypted', 'true, false'],
    [{ encrypted: 'false', kmskeyid: 'alias/x' }, 'kmskeyid', 'encrypted=true'],
    [{ kmskeyid: '../../etc' }, 'kmskeyid', 'KMS key'],
    [{ snapshot: 'vol-123' }, 'snapshot', 'snap-'],
    [{ fs: 'btrfs' }, 'fs', 'ext4, xfs'],
    [{ mountopts: 'nobarrier' }, 'mountopts', 'allowed for fs=ext4'],
    [{ mountopts: 'noatime;rm -rf /' }, 'mountopts', 'allowed'],
    [{ fs: 'xfs', mountopts: 'data=ordered' }, 'mountopts', 'fs=xfs'],
    [{ size: 10 }, 'size', 'string value'],
    [{ backing: 'floppy' }, 'backing', 'relocatable, shared, nfs'],
  ])('refuses %j naming %s', (opts, key, allowed) => {
    const err = refused(opts);
    expect(err.key).toBe(key);
    expect(err.message).toContain(key);
    expect(err.message).toContain(allowed);
  });

  test('refuses options that do not apply to the backing', () => {
    expect(refused({ backing: 'shared', size: '10' }).message).toContain('does not apply to backing=shared');
    expect(refused({ perfmode: 'maxio' }).message).toContain('does not apply to backing=relocatable');
    expect(refused({ backing: 'nfs' }).message).toContain('share=host:/export');
    expect(refused({ backing: 'nfs', share: 'host:/a/../etc' }).key).toBe('share');
    expect(refused({ backing: 'shared', mode: '999' }).key).toBe('mode');
    expect(refused({ backing: 'shared', uid: 'root' }).key).toBe('uid');
  });

  test('refuses Opts that are not an object', () => {
    expect(refused([] as unknown as Record<string, unknown>).key).toBe('Opts');
  });

  test('nfs share and shared owner options', () => {
    expect(parseOptions({ backing: 'nfs', share: 'nas.local:/exports/db', uid: '999', mode: '775' }, 'shared').options).toMatchObject({ share: 'nas.local:/exports/db', uid: 999, mode: '0775' });
  });

  test('conflicts are judged on the keys given only', () => {
    const existing = parseOptions({ size: '20' }, 'relocatable').options;
    expect(conflictingKeys(parseOptions({}, 'relocatable'), existing)).toEqual([]);
    expect(conflictingKeys(parseOptions({ size: '20' }, 'relocatable'), existing)).toEqual([]);
    expect(conflictingKeys(parseOptions({ size: '30', fs: 'ext4' }, 'relocatable'), existing)).toEqual(['size']);
  });
});

describe('the operator\'s cost bounds (STOWAGE_MAX_SIZE_GIB, STOWAGE_MAX_IOPS)', () => {
  const cost = { maxSizeGiB: 1024, maxIops: 16000 };
  const refusedWithin = (opts: Record<string, string>, limits = cost): InvalidOptionError => {
    try {
      parseOptions({ backing: 'relocatable', ...opts }, 'shared', limits);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError);
      return err as InvalidOptionError;
    }
    throw new Error(`options ${JSON.stringify(opts)} were accepted within ${JSON.stringify(limits)}`);
  };

  test('up to the bounds is accepted, and the defaults stay inside them', () => {
    expect(parseOptions({ backing: 'relocatable', size: '1024', ebstype: 'io2', iops: '16000' }, 'shared', cost).options).toMatchObject({ size: 1024, iops: 16000 });
    expect(parseOptions({}, 'relocatable', cost).options).toMatchObject({ size: 10, iops: 3000, throughput: 125 });
  });

  test.each([
    [{ size: '1025' }, 'size', 'from 1 to 1024 GiB for ebstype=gp3 (STOWAGE_MAX_SIZE_GIB=1024)'],
    [{ ebstype: 'io2', size: '65536' }, 'size', 'from 4 to 1024'],
    [{ ebstype: 'io2', size: '500', iops: '16001' }, 'iops', 'from 100 to 16000 for ebstype=io2 at size=500 (at most 1000 per GiB, STOWAGE_MAX_IOPS=16000)'],
    [{ ebstype: 'gp3', size: '100', iops: '16001' }, 'iops', 'from 3000 to 16000'],
  ])('refuses %j naming %s and the setting', (opts, key, allowed) => {
    const err = refusedWithin(opts);
    expect(err.key).toBe(key);
    expect(err.message).toContain(allowed);
  });

  test('the settings default to 1 TiB and 16000 IOPS, and take 1 up to io2\'s own maximum', () => {
    expect(loadConfig({}).cost).toEqual(cost);
    expect(loadConfig({ STOWAGE_MAX_SIZE_GIB: '65536', STOWAGE_MAX_IOPS: '256000' }).cost).toEqual({ maxSizeGiB: 65536, maxIops: 256000 });
    for (const [name, value] of [['STOWAGE_MAX_SIZE_GIB', '0'], ['STOWAGE_MAX_SIZE_GIB', '65537'], ['STOWAGE_MAX_IOPS', '256001'], ['STOWAGE_MAX_IOPS', '1e4']]) {
      expect(() => loadConfig({ [name!]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name!]: value })).toThrow(`${name}="${value}" is not valid: expected a whole number from 1 to`);
    }
  });

  test('a bound below what a volume type needs names the type and the setting', () => {
    expect(refusedWithin({}, { maxSizeGiB: 5, maxIops: 16000 }).message).toContain('needs a size from 1 to 5 GiB (STOWAGE_MAX_SIZE_GIB=5); give --opt size');
    expect(refusedWithin({ ebstype: 'gp3' }, { maxSizeGiB: 1024, maxIops: 1000 }).message).toBe('invalid option ebstype="gp3": needs at least 3000 IOPS, more than STOWAGE_MAX_IOPS=1000 allows');
    // A type without settable IOPS is bounded by size alone.
    expect(parseOptions({ backing: 'relocatable', ebstype: 'gp2', size: '100' }, 'shared', { maxSizeGiB: 1024, maxIops: 1000 }).options.iops).toBeUndefined();
  });
});
