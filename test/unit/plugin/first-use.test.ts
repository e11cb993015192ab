/**
 * What a newcomer meets on a first `docker volume create` (issue 18, items 2 and 7): a volume
 * made without `backing` says what it became and how to ask for a disk, Get's Status names the
 * backing whatever the driver reports, and dockerd's Get before Create is not a warning.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../../core/log.js';
import { RefcountStore } from '../../../plugin/refcounts.js';
import { createProtocolHandler } from '../../../plugin/server.js';
import { VolumeService } from '../../../plugin/volume-service.js';
import { MemoryDriver } from './memory-driver.js';
import { post } from './socket-client.js';

interface Line {
  level: number;
  msg: string;
  volume?: string;
  endpoint?: string;
}

let dir: string;
let lines: Line[];
let service: VolumeService;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-first-use-'));
  lines = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Line);
      done();
    },
  });
  const log = createLogger('debug', sink, 'json');
  const refcounts = new RefcountStore(dir, log);
  await refcounts.load(async () => true);
  service = new VolumeService({
    drivers: [new MemoryDriver('shared'), new MemoryDriver('relocatable')], refcounts, log, defaultBacking: 'shared', mountTimeoutMs: 1000,
  });
});

afterEach(async () => {
  service.close();
  await rm(dir, { recursive: true, force: true });
});

const WARN = 40;

test('a Create without backing warns, naming the volume, what it became and how to ask for a disk', async () => {
  await service.create('pgdata', {});
  const warned = lines.filter((l) => l.level === WARN);
  expect(warned).toHaveLength(1);
  expect(warned[0]!.volume).toBe('pgdata');
  expect(warned[0]!.msg).toMatch(/pgdata was created without a backing option, so it is shared .*--opt backing=relocatable/);

  await service.create('disk', { backing: 'relocatable' });
  await service.create('files', { backing: 'shared' });
  expect(lines.filter((l) => l.level === WARN)).toHaveLength(1);
});

test("Get's Status names the backing, also when the driver's status does not", async () => {
  await service.create('pgdata', {});
  await service.create('disk', { backing: 'relocatable' });
  // MemoryDriver's status has only the size.
  expect((await service.get('pgdata')).status).toMatchObject({ backing: 'shared', size: 10 });
  expect((await service.get('disk')).status).toMatchObject({ backing: 'relocatable' });
  expect((await service.list()).map((v) => v.status.backing)).toEqual(['shared', 'relocatable']);
});

describe('over the protocol', () => {
  let server: Server;
  let socket: string;

  beforeEach(async () => {
    socket = path.join(dir, 'p.sock');
    server = createServer(createProtocolHandler(service, createLogger('debug', new Writable({ write: (c: Buffer, _e, done) => (lines.push(JSON.parse(c.toString()) as Line), done()) }), 'json')));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("dockerd's Get before Create logs at debug; a Mount of a missing volume still warns", async () => {
    expect((await post(socket, '/VolumeDriver.Get', JSON.stringify({ Name: 'new' }))).status).toBe(500);
    expect((await post(socket, '/VolumeDriver.Create', JSON.stringify({ Name: 'new', Opts: { backing: 'relocatable' } }))).status).toBe(200);
    const get = lines.filter((l) => l.endpoint === '/VolumeDriver.Get');
    expect(get.map((l) => [l.level, l.msg])).toEqual([[20, 'volume new does not exist']]);
    expect(lines.filter((l) => l.level >= WARN)).toEqual([]);

    expect((await post(socket, '/VolumeDriver.Mount', JSON.stringify({ Name: 'gone', ID: 'a1' }))).status).toBe(500);
    expect(lines.filter((l) => l.level === WARN).map((l) => l.msg)).toEqual(['volume gone does not exist']);
  });
});
