import { liveDuplicates, type EbsVolume } from '../../../core/schema/ebs-volume.js';

function volume(id: string, extra: Partial<EbsVolume> = {}): EbsVolume {
  // Only what liveDuplicates reads is meaningful; the rest keeps the shape.
  return {
    id, name: 'db', zone: 'us-east-1a', state: 'available', size: 10, type: 'gp3', iops: 3000, throughput: 125,
    encrypted: true, generation: 1, fs: 'ext4', mountopts: [], kmskeyid: undefined, snapshot: undefined,
    createdAt: new Date('2026-01-01T00:00:00Z'), attachment: undefined, snapshotCurrent: undefined, blank: false,
    movedFrom: undefined, ...extra,
  } as EbsVolume;
}

// Issue 15.9: pickCurrent quietly takes the oldest of two race-born volumes; Get and Mount must
// refuse them instead (aws-ebs-csi-driver's ErrMultiDisks), and only a move's pair is expected.
describe('liveDuplicates', () => {
  test('one volume, or a move\'s source with its unfinished copy, or a retired source: none', () => {
    expect(liveDuplicates([volume('vol-a')])).toEqual([]);
    expect(liveDuplicates([volume('vol-a'), volume('vol-b', { generation: 2, movedFrom: 'vol-a', zone: 'us-east-1b' })])).toEqual([]);
    expect(liveDuplicates([volume('vol-a', { state: 'deleting' }), volume('vol-b', { generation: 2, movedFrom: 'vol-a' })])).toEqual([]);
  });

  test('two live volumes that no move explains: both', () => {
    const twins = [volume('vol-a'), volume('vol-b', { zone: 'us-east-1b' })];
    expect(liveDuplicates(twins).map((v) => v.id)).toEqual(['vol-a', 'vol-b']);
  });
});
