import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RefcountStore } from '../../../plugin/refcounts.js';
import { silentLogger } from '../../../core/log.js';

describe('RefcountStore', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-refs-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('counts by ID and persists every change', async () => {
    const store = new RefcountStore(dir, silentLogger);
    await store.load(async () => true);
    await store.add('db', 'id1', 'relocatable', '/mnt/stowage/db');
    await store.add('db', 'id1', 'relocatable', '/mnt/stowage/db');
    await store.add('db', 'id2', 'relocatable', '/mnt/stowage/db');
    expect(store.count('db')).toBe(2);
    expect(await store.remove('db', 'unknown')).toBe(false);
    expect(await store.remove('db', 'id1')).toBe(true);
    const onDisk = JSON.parse(await readFile(path.join(dir, 'mounts.json'), 'utf8'));
    expect(onDisk.volumes.db.ids).toEqual(['id2']);
  });

  test('a new process restores the counts of volumes still mounted and drops the others', async () => {
    const before = new RefcountStore(dir, silentLogger);
    await before.load(async () => true);
    await before.add('kept', 'a', 'relocatable', '/mnt/stowage/kept');
    await before.add('gone', 'b', 'shared', '/mnt/stowage/gone');
    const after = new RefcountStore(dir, silentLogger);
    await after.load(async (mp) => mp === '/mnt/stowage/kept');
    expect(after.get('kept')).toEqual({ backing: 'relocatable', mountpoint: '/mnt/stowage/kept', ids: ['a'] });
    expect(after.count('gone')).toBe(0);
    const onDisk = JSON.parse(await readFile(path.join(dir, 'mounts.json'), 'utf8'));
    expect(Object.keys(onDisk.volumes)).toEqual(['kept']);
  });

  test('an unreadable state file starts empty instead of failing the start', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(dir, 'mounts.json'), '{not json');
    const store = new RefcountStore(dir, silentLogger);
    await store.load(async () => true);
    expect(store.names()).toEqual([]);
  });
});
