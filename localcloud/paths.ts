import { join } from 'node:path';

/** Where the emulator keeps things under its folder; the plugin's host layer relies on these. */
export class Paths {
  /** `regionDir`: where one region keeps its state, volumes and snapshots (the first region: `dir`). */
  constructor(
    readonly dir: string,
    private readonly regionDir = dir,
  ) {}
  /** A further region's folder; devices and EFS stay shared (instance ids are unique across regions). */
  forRegion(region: string): Paths {
    return new Paths(this.dir, join(this.regionsDir, region));
  }
  get regionsDir(): string {
    return join(this.dir, 'regions');
  }
  get stateFile(): string {
    return join(this.regionDir, 'state.json');
  }
  get volumesDir(): string {
    return join(this.regionDir, 'volumes');
  }
  get snapshotsDir(): string {
    return join(this.regionDir, 'snapshots');
  }
  get efsDir(): string {
    return join(this.dir, 'efs');
  }
  volumeImage(volumeId: string): string {
    return join(this.volumesDir, `${volumeId}.img`);
  }
  snapshotImage(snapshotId: string): string {
    return join(this.snapshotsDir, `${snapshotId}.img`);
  }
  deviceDir(instanceId: string): string {
    return join(this.dir, 'devices', instanceId);
  }
  /** the name udev gives an EBS NVMe device on Nitro instances */
  deviceLink(instanceId: string, volumeId: string): string {
    return join(this.deviceDir(instanceId), `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`);
  }
  fileSystemDir(fileSystemId: string): string {
    return join(this.efsDir, fileSystemId);
  }
  /** IP address → folder of every mount target, for a host layer that mounts by bind mount */
  get mountTargetsFile(): string {
    return join(this.efsDir, 'mount-targets.json');
  }
}
