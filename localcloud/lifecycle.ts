import { mkdir, readdir, realpath, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cloud } from './cloud.js';
import { eraseVolume } from './ec2/volumes.js';
import { attachLoop, detachLoop, isBusy, loopBackingFile, loopsBackedIn, mountsOf, unmount } from './loop.js';
import { Paths } from './paths.js';
import type { Attachment, Volume } from './state.js';

/** Time passing in the emulated cloud: resources whose transition is due take their next state. */

async function link(cloud: Cloud, volume: Volume, a: Attachment, device: string): Promise<void> {
  const path = cloud.paths.deviceLink(a.instanceId, volume.id);
  await mkdir(cloud.paths.deviceDir(a.instanceId), { recursive: true });
  await rm(path, { force: true });
  await symlink(device, path);
}

async function connect(cloud: Cloud, volume: Volume, a: Attachment): Promise<void> {
  a.loop = await attachLoop(cloud.paths.volumeImage(volume.id));
  await link(cloud, volume, a, a.loop);
  a.state = 'attached';
}

/** The instance lets go of a volume only once nothing holds it, unless forced, as a real OS does. */
async function disconnect(cloud: Cloud, volume: Volume, a: Attachment): Promise<void> {
  if (a.loop) {
    if (!a.force && (cloud.faults.unresponsive(a.instanceId) || (await isBusy(a.loop)))) return;
    if ((await loopBackingFile(a.loop)) === cloud.paths.volumeImage(volume.id)) await detachLoop(a.loop);
  }
  await rm(cloud.paths.deviceLink(a.instanceId, volume.id), { force: true });
  delete volume.attachment;
}

export async function advance(cloud: Cloud): Promise<void> {
  const now = Date.now();
  for (const v of [...cloud.state.volumes]) {
    if (v.state === 'creating' && v.due <= now) v.state = 'available';
    const a = v.attachment;
    if (a?.state === 'attaching' && !a.stuck && a.due <= now) await connect(cloud, v, a);
    if (a?.state === 'detaching' && a.due <= now) await disconnect(cloud, v, a);
    const m = v.modification;
    if (m?.state === 'modifying' && m.due <= now) Object.assign(m, { state: 'optimizing', due: now + (m.optimizingMs ?? 0) });
    if (m?.state === 'optimizing' && m.due <= now) Object.assign(m, { state: 'completed', endTime: new Date(now).toISOString() });
    if (v.state === 'deleting' && v.due <= now) await eraseVolume(cloud, v);
  }
  for (const s of cloud.state.snapshots) if (s.state === 'pending' && s.due <= now) s.state = 'completed';
  for (const i of cloud.state.instances) {
    if (i.due > now) continue;
    if (i.state === 'pending') i.state = 'running';
    else if (i.state === 'stopping') i.state = 'stopped';
    else if (i.state === 'shutting-down' && !cloud.state.volumes.some((v) => v.attachment?.instanceId === i.id)) {
      i.state = 'terminated';
      await rm(cloud.paths.deviceDir(i.id), { recursive: true, force: true });
    }
  }
  for (const r of [...cloud.state.fileSystems, ...cloud.state.mountTargets, ...cloud.state.accessPoints])
    if (r.state === 'creating' && r.due <= now) r.state = 'available';
}

/**
 * After a restart: keep the loop devices that still back their attachment, re-create the missing
 * ones, and release any other loop device on our volume files (left from a crash).
 */
export async function recover(cloud: Cloud): Promise<void> {
  const kept = new Set<string>();
  for (const v of cloud.state.volumes) {
    const a = v.attachment;
    if (!a?.loop) continue;
    const image = cloud.paths.volumeImage(v.id);
    if ((await loopBackingFile(a.loop)) !== image) {
      if (a.state === 'detaching') {
        await rm(cloud.paths.deviceLink(a.instanceId, v.id), { force: true });
        delete v.attachment;
        continue;
      }
      a.loop = await attachLoop(image);
    }
    await link(cloud, v, a, a.loop);
    kept.add(a.loop);
  }
  for (const { device } of await loopsBackedIn(cloud.paths.volumesDir)) if (!kept.has(device)) await detachLoop(device);
  await cloud.save();
}

/** Unmounts whatever is mounted from our loop devices or our EFS folders, detaches the loop devices, removes device links. */
export async function releaseHost(dir: string): Promise<void> {
  let paths: Paths;
  try {
    paths = new Paths(await realpath(dir));
  } catch {
    return; // nothing was ever made there
  }
  const further = (await readdir(paths.regionsDir).catch(() => [])).map((region) => paths.forRegion(region).volumesDir);
  const loops = (await Promise.all([paths.volumesDir, ...further].map((folder) => loopsBackedIn(folder)))).flat();
  await mkdir(paths.efsDir, { recursive: true });
  for (const mountPoint of await mountsOf(loops.map((l) => l.device), paths.efsDir)) await unmount(mountPoint);
  for (const { device } of loops) await detachLoop(device);
  const devices = join(paths.dir, 'devices');
  for (const instance of await readdir(devices).catch(() => [])) {
    for (const name of await readdir(join(devices, instance)).catch(() => [])) {
      if (name.startsWith('nvme-Amazon_Elastic_Block_Store_')) await rm(join(devices, instance, name), { force: true });
    }
  }
}
