import type { VolumeOptions } from '../../core/volume-options.js';

/** A relocatable gp3 volume's options as Create validates them by default, with `size` GiB (and any override). */
export function gp3Options(size: number, extra: Partial<VolumeOptions> = {}): VolumeOptions {
  return {
    backing: 'relocatable', size, ebstype: 'gp3', iops: 3000, throughput: 125, encrypted: true,
    fs: 'ext4', mountopts: [], perfmode: 'generalpurpose', uid: 0, gid: 0, mode: '0755',
    ...extra,
  };
}
