import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostError } from '../../../core/errors.js';
import { parseMountinfo, readMountinfo, unescapeMountField } from '../../../host/mountinfo.js';

const SAMPLE = [
  '21 26 0:20 / /proc rw,relatime - proc proc rw',
  '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
  '40 26 7:0 / /mnt/stowage/my\\040volume rw,relatime shared:5 master:2 - ext4 /dev/loop0 rw',
  '41 26 0:44 /exports/a\\011b /srv/back\\134slash rw - nfs4 fs-1.efs.eu-west-1.amazonaws.com:/ rw,vers=4.1',
  '',
].join('\n');

describe('parseMountinfo', () => {
  test('reads every field, whatever the number of optional fields', () => {
    const entries = parseMountinfo(SAMPLE);
    expect(entries).toHaveLength(4);
    expect(entries[1]).toEqual({
      mountId: 36, devno: '98:0', root: '/mnt1', target: '/mnt2', options: 'rw,noatime', fstype: 'ext3', source: '/dev/root',
    });
    expect(entries[2]).toMatchObject({ mountId: 40, target: '/mnt/stowage/my volume', fstype: 'ext4', source: '/dev/loop0' });
  });

  test('unescapes octal escapes in root, target and source', () => {
    const nfs = parseMountinfo(SAMPLE)[3];
    expect(nfs?.root).toBe('/exports/a\tb');
    expect(nfs?.target).toBe('/srv/back\\slash');
    expect(nfs?.source).toBe('fs-1.efs.eu-west-1.amazonaws.com:/');
  });

  test('a target named "-" is not taken for the separator', () => {
    const [entry] = parseMountinfo('50 26 7:1 / /- rw - xfs /dev/loop1 rw');
    expect(entry).toMatchObject({ target: '/-', fstype: 'xfs', source: '/dev/loop1' });
  });

  test('a malformed line is a HostError that quotes it', () => {
    expect(() => parseMountinfo('1 2 3')).toThrow(HostError);
    expect(() => parseMountinfo('1 2 0:1 / /x rw shared:1 ext4 /dev/x rw')).toThrow(/malformed mountinfo line/);
  });

  test('unescapeMountField leaves everything else alone', () => {
    expect(unescapeMountField('a\\040b\\012c\\\\d')).toBe('a b\nc\\\\d');
    expect(unescapeMountField('/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123')).toBe(
      '/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123',
    );
  });
});

describe('readMountinfo', () => {
  test('reads a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-mountinfo-'));
    try {
      await writeFile(join(dir, 'mountinfo'), SAMPLE);
      expect((await readMountinfo(join(dir, 'mountinfo'))).map((m) => m.target)).toContain('/mnt/stowage/my volume');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('reads this process\'s own mounts by default', async () => {
    expect((await readMountinfo()).some((m) => m.target === '/')).toBe(true);
  });
});
