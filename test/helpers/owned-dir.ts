/**
 * Temporary folders that know their owner. Jest never fires 'exit' listeners registered from a
 * test file, and a killed jest runs no afterAll, so a folder cannot rely on its creator to remove
 * it: each one records the pid and start time of the process that made it, and later runs remove
 * the folders whose owner is gone.
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from './run.js';

const UMOUNT = '/usr/bin/umount';
const OWNER_FILE = 'owner';
const SCRATCH_PREFIX = 'stowage-scratch-';

/** A fresh folder `os.tmpdir()/<prefix>XXXXXX` stamped with this process as its owner. */
export async function makeOwnedDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await writeFile(path.join(dir, OWNER_FILE), await ownerStamp(process.pid));
  return dir;
}

/** Folders `os.tmpdir()/<prefix>*` whose owning process no longer runs. */
export async function abandonedDirs(prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(os.tmpdir())) {
    if (!entry.startsWith(prefix)) continue;
    const dir = path.join(os.tmpdir(), entry);
    const owner = await readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => undefined);
    if (owner === undefined) {
      // Either being made right now by another run, or left by a crash long ago.
      const made = (await stat(dir).catch(() => undefined))?.mtimeMs;
      if (made !== undefined && Date.now() - made > 60_000) found.push(dir);
    } else if (owner !== (await ownerStamp(Number(owner.split(' ')[0])).catch(() => ''))) {
      found.push(dir);
    }
  }
  return found;
}

/**
 * A scratch folder for one test file (plugin state, volumes). Also removes the scratch folders of
 * runs that died before their afterAll.
 */
export async function scratchDir(label: string): Promise<string> {
  for (const dir of await abandonedDirs(SCRATCH_PREFIX)) await removeTree(dir);
  return makeOwnedDir(`${SCRATCH_PREFIX}${label}-`);
}

/** Unmounts whatever is mounted inside dir (newest first), then deletes it. */
export async function removeTree(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = await mountsUnder(dir);
    if (mounts.length === 0) break;
    // Later lines of mountinfo may sit on top of earlier ones.
    for (const mountpoint of mounts.reverse()) {
      const r = await run(UMOUNT, [mountpoint], { allowFailure: true });
      if (r.code !== 0) await run(UMOUNT, ['-l', mountpoint], { allowFailure: true });
    }
  }
  const stuck = await mountsUnder(dir);
  if (stuck.length > 0) throw new Error(`cannot remove ${dir}: still mounted: ${stuck.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => unescapeMountPath(line.split(' ')[4]!))
    .filter((mp) => mp === dir || mp.startsWith(dir + '/'));
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** pid plus start time: a reused pid does not pass for the process that made the folder. */
async function ownerStamp(pid: number): Promise<string> {
  const statLine = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  return `${pid} ${fields[19]}`;
}
