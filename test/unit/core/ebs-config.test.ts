/** The one rule for size, type, IOPS and throughput, as Create and `stowage modify` use it. */
import { checkEbsConfig, EBS_ONLY, type EbsConfigNames } from '../../../core/ebs-config.js';
import { InvalidOptionError } from '../../../core/errors.js';

const MODIFY: EbsConfigNames = { size: '--size', ebstype: '--type', iops: '--iops', throughput: '--throughput', giveSize: 'give --size' };
const GP3 = { size: 20, ebstype: 'gp3' as const, iops: 6000, throughput: 500 };
const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidOptionError) return err.message;
    throw err;
  }
  throw new Error('not refused');
};

test('gp3 has its 3000 IOPS at any size: the per-GiB ratio bounds only what lies above', () => {
  expect(checkEbsConfig({ size: '2', iops: '3000' })).toEqual({ size: 2, ebstype: 'gp3', iops: 3000, throughput: 125 });
  expect(refusal(() => checkEbsConfig({ size: '2', iops: '3001' }))).toContain('a whole number from 3000 to 3000');
});

test('modify keeps what it is not told of, gives a new type its baseline, and restates nothing for a type without IOPS', () => {
  expect(checkEbsConfig({ size: '30' }, EBS_ONLY, GP3, MODIFY)).toEqual({ size: 30, ebstype: 'gp3', iops: 6000, throughput: 500 });
  expect(checkEbsConfig({ ebstype: 'io2' }, EBS_ONLY, GP3, MODIFY)).toEqual({ size: 20, ebstype: 'io2', iops: 3000 });
  expect(checkEbsConfig({ ebstype: 'gp2' }, EBS_ONLY, GP3, MODIFY)).toEqual({ size: 20, ebstype: 'gp2' });
});

test('modify refuses to shrink, and names its own flags in every refusal', () => {
  expect(refusal(() => checkEbsConfig({ size: '5' }, EBS_ONLY, GP3, MODIFY))).toBe(
    'invalid option --size="5": smaller than the volume\'s 20 GiB; EBS volumes never shrink (make a smaller volume and copy the data)',
  );
  expect(refusal(() => checkEbsConfig({ ebstype: 'sc1' }, EBS_ONLY, GP3, MODIFY))).toContain('--type=sc1 needs a size from 125 to 16384 GiB; give --size');
  expect(refusal(() => checkEbsConfig({ throughput: '1001' }, EBS_ONLY, GP3, MODIFY))).toContain('--throughput="1001": a whole number from 125 to 1000');
  expect(refusal(() => checkEbsConfig({ iops: '4000' }, EBS_ONLY, { size: 10, ebstype: 'gp2' }, MODIFY))).toContain('--type=gp2 has no settable IOPS');
});
