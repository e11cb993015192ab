import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startPlugin, type RunningPlugin } from '../../../plugin/main.js';
import { createProtocolHandler, listenOnSocket, type VolumeHandler } from '../../../plugin/server.js';
import { loadConfig } from '../../../plugin/config.js';
import { silentLogger } from '../../../core/log.js';
import { MemoryDriver } from './memory-driver.js';
import { post } from './socket-client.js';

describe('protocol server', () => {
  let dir: string;
  let socket: string;
  let plugin: RunningPlugin;
  let driver: MemoryDriver;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-srv-'));
    socket = path.join(dir, 'plugins', 'stowage.sock');
    await writeFile(path.join(dir, 'stale'), '');
    driver = new MemoryDriver();
    const config = loadConfig({ STOWAGE_SOCKET: socket, STOWAGE_STATE_DIR: path.join(dir, 'state'), STOWAGE_DEFAULT_BACKING: 'relocatable', STOWAGE_MAX_SIZE_GIB: '1000' });
    plugin = await startPlugin({ config, drivers: [driver], log: silentLogger, isMounted: async () => true });
  });
  afterAll(async () => {
    await plugin.close();
    await rm(dir, { recursive: true, force: true });
  });

  const call = async (route: string, body: unknown) => {
    const reply = await post(socket, route, typeof body === 'string' ? body : JSON.stringify(body));
    return { ...reply, json: JSON.parse(reply.body) as Record<string, any> };
  };

  test('socket is 0660', async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o660);
  });

  test('activation and capabilities', async () => {
    const activate = await call('/Plugin.Activate', '');
    expect(activate.json).toEqual({ Implements: ['VolumeDriver'] });
    expect(activate.contentType).toContain('application/vnd.docker.plugins.v1.2+json');
    expect((await call('/VolumeDriver.Capabilities', {})).json).toEqual({ Capabilities: { Scope: 'global' } });
  });

  test('the volume lifecycle through every endpoint', async () => {
    expect((await call('/VolumeDriver.Create', { Name: 'db', Opts: { size: '5' } })).json).toEqual({ Err: '' });
    const got = await call('/VolumeDriver.Get', { Name: 'db' });
    expect(got.json).toEqual({ Volume: { Name: 'db', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { backing: 'relocatable', size: 5 } }, Err: '' });
    expect(Number.isNaN(Date.parse(got.json.Volume.CreatedAt))).toBe(false);
    expect((await call('/VolumeDriver.Mount', { Name: 'db', ID: 'abc' })).json).toEqual({ Mountpoint: '/mnt/test/db', Err: '' });
    expect((await call('/VolumeDriver.Path', { Name: 'db' })).json).toEqual({ Mountpoint: '/mnt/test/db', Err: '' });
    expect((await call('/VolumeDriver.List', {})).json).toEqual({ Volumes: [{ Name: 'db', Mountpoint: '/mnt/test/db', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { backing: 'relocatable', size: 5, mountedHere: true, references: 1 } }], Err: '' });
    expect((await call('/VolumeDriver.Unmount', { Name: 'db', ID: 'abc' })).json).toEqual({ Err: '' });
    expect((await call('/VolumeDriver.Remove', { Name: 'db' })).json).toEqual({ Err: '' });
  });

  test.each([
    ['malformed JSON', '/VolumeDriver.Create', '{"Name": ', 'malformed JSON'],
    ['a body that is not an object', '/VolumeDriver.Create', '[1,2]', 'must be a JSON object'],
    ['a string body', '/VolumeDriver.Get', '"db"', 'must be a JSON object'],
    ['a missing Name', '/VolumeDriver.Create', '{}', 'Name is missing'],
    ['an empty Name', '/VolumeDriver.Get', '{"Name":""}', 'Name is missing'],
    ['a Name that is not a string', '/VolumeDriver.Remove', '{"Name":42}', 'Name is missing'],
    ['a traversal Name', '/VolumeDriver.Mount', '{"Name":"../../etc","ID":"x"}', 'invalid volume name'],
    ['a missing ID on Mount', '/VolumeDriver.Mount', '{"Name":"db"}', 'ID is missing'],
    ['a missing ID on Unmount', '/VolumeDriver.Unmount', '{"Name":"db"}', 'ID is missing'],
    ['a bad option', '/VolumeDriver.Create', '{"Name":"x","Opts":{"size":"abc"}}', 'invalid option size="abc"'],
    ['a size above the operator\'s limit', '/VolumeDriver.Create', '{"Name":"x","Opts":{"size":"1001"}}', 'STOWAGE_MAX_SIZE_GIB=1000'],
    ['an unknown volume', '/VolumeDriver.Get', '{"Name":"nope"}', 'volume nope does not exist'],
  ])('%s gets a clear Err with HTTP 500', async (_what, route, body, message) => {
    const reply = await call(route, body);
    expect(reply.status).toBe(500);
    expect(reply.json.Err).toContain(message);
    expect((await call('/VolumeDriver.Capabilities', {})).status).toBe(200);
  });

  test('a body over 1 MiB is refused and the server keeps serving', async () => {
    const reply = await call('/VolumeDriver.Create', JSON.stringify({ Name: 'big', Opts: { x: 'y'.repeat(1.1 * 1024 * 1024) } }));
    expect(reply.status).toBe(500);
    expect(reply.json.Err).toContain('larger than 1mb');
    expect(driver.volumes.has('big')).toBe(false);
  });

  test('List follows a mount and an unmount of a volume it listed before', async () => {
    const listed = async () => (await call('/VolumeDriver.List', {})).json.Volumes as Array<Record<string, unknown>>;
    await call('/VolumeDriver.Create', { Name: 'listed' });
    expect((await listed()).find((v) => v.Name === 'listed')).toEqual({ Name: 'listed', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { backing: 'relocatable', size: 10 } });
    await call('/VolumeDriver.Mount', { Name: 'listed', ID: 'one' });
    await call('/VolumeDriver.Mount', { Name: 'listed', ID: 'two' });
    expect((await listed()).find((v) => v.Name === 'listed')).toEqual({ Name: 'listed', Mountpoint: '/mnt/test/listed', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { backing: 'relocatable', size: 10, mountedHere: true, references: 2 } });
    await call('/VolumeDriver.Unmount', { Name: 'listed', ID: 'one' });
    expect((await listed()).find((v) => v.Name === 'listed')).toMatchObject({ Status: { references: 1 } });
    await call('/VolumeDriver.Unmount', { Name: 'listed', ID: 'two' });
    expect((await listed()).find((v) => v.Name === 'listed')).toEqual({ Name: 'listed', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { backing: 'relocatable', size: 10 } });
    await call('/VolumeDriver.Remove', { Name: 'listed' });
    expect((await listed()).find((v) => v.Name === 'listed')).toBeUndefined();
  });

  test('a body over 1 MiB sent in chunks, without a length, is refused as well', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ socketPath: socket, path: '/VolumeDriver.Create', method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      const chunk = 'y'.repeat(64 * 1024);
      req.write('{"Name":"chunked","Opts":{"x":"');
      for (let i = 0; i < 20; i++) req.write(chunk);
      req.end('"}}');
    });
    expect(reply.status).toBe(500);
    expect(JSON.parse(reply.body).Err).toContain('larger than 1mb');
    expect(driver.volumes.has('chunked')).toBe(false);
    expect((await call('/VolumeDriver.Capabilities', {})).status).toBe(200);
  });

  test('a client that hangs up halfway through its body leaves nothing created, and the server keeps serving', async () => {
    await new Promise<void>((resolve) => {
      const req = http.request({ socketPath: socket, path: '/VolumeDriver.Create', method: 'POST', headers: { 'Content-Length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"Name":"halfway","Opts":{');
      setImmediate(() => req.destroy());
    });
    expect((await call('/VolumeDriver.Capabilities', {})).status).toBe(200);
    expect(driver.volumes.has('halfway')).toBe(false);
  });

  test('an endpoint asked with GET, or with a query string, is answered as dockerd would need', async () => {
    const get = await new Promise<number>((resolve, reject) => {
      http.get({ socketPath: socket, path: '/VolumeDriver.List' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(get).toBe(404);
    expect((await call('/VolumeDriver.Capabilities?x=1', {})).json).toEqual({ Capabilities: { Scope: 'global' } });
  });

  test('an unknown endpoint is a 404 with Err', async () => {
    const reply = await call('/VolumeDriver.Explode', {});
    expect(reply.status).toBe(404);
    expect(reply.json.Err).toContain('unknown endpoint');
  });

  test('a second plugin on the same live socket refuses to start', async () => {
    const config = loadConfig({ STOWAGE_SOCKET: socket, STOWAGE_STATE_DIR: path.join(dir, 'state2') });
    await expect(startPlugin({ config, drivers: [], log: silentLogger })).rejects.toThrow('already serving');
  });

  test('a stale socket file is replaced', async () => {
    const staleSocket = path.join(dir, 'stale');
    const config = loadConfig({ STOWAGE_SOCKET: staleSocket, STOWAGE_STATE_DIR: path.join(dir, 'state3') });
    const second = await startPlugin({ config, drivers: [], log: silentLogger });
    expect((await post(staleSocket, '/VolumeDriver.Capabilities', '{}')).status).toBe(200);
    await second.close();
  });
});

describe('the socket as a listening surface', () => {
  const IDLE_MS = 300;
  let dir: string;
  let socket: string;
  let server: http.Server;
  let mountTakesMs = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-surface-'));
    socket = path.join(dir, 'stowage.sock');
    const volumes = {
      mount: async () => {
        await new Promise((resolve) => setTimeout(resolve, mountTakesMs));
        return '/mnt/test/slow';
      },
    } as unknown as VolumeHandler;
    server = await listenOnSocket(createProtocolHandler(volumes, silentLogger), socket, { idleMs: IDLE_MS, maxConnections: 2 });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await rm(dir, { recursive: true, force: true });
  });

  /** A raw connection, and how long after opening it the server closed it. */
  const connect = async (): Promise<{ conn: net.Socket; closed: Promise<number> }> => {
    const started = Date.now();
    const conn = net.connect(socket);
    const closed = new Promise<number>((resolve) => conn.on('close', () => resolve(Date.now() - started)));
    conn.on('error', () => undefined);
    await new Promise((resolve) => conn.once('connect', resolve));
    return { conn, closed };
  };

  test('0660, owned by the plugin\'s own user and group', async () => {
    const st = await stat(socket);
    expect(st.mode & 0o777).toBe(0o660);
    expect([st.uid, st.gid]).toEqual([process.getuid!(), process.getgid!()]);
  });

  test('a connection that sends nothing is closed after the idle time', async () => {
    const { closed } = await connect();
    const ms = await closed;
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(ms).toBeLessThan(IDLE_MS * 4);
  });

  test('a connection that stops halfway through its request is closed as well', async () => {
    const { conn, closed } = await connect();
    conn.write('POST /VolumeDriver.Mount HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"Name":');
    expect(await closed).toBeLessThan(IDLE_MS * 4);
  });

  test('a Mount that takes longer than the idle time keeps its connection and answers', async () => {
    mountTakesMs = IDLE_MS * 3;
    try {
      const reply = await post(socket, '/VolumeDriver.Mount', JSON.stringify({ Name: 'slow', ID: 'a' }));
      expect([reply.status, JSON.parse(reply.body)]).toEqual([200, { Mountpoint: '/mnt/test/slow', Err: '' }]);
    } finally {
      mountTakesMs = 0;
    }
  });

  test('connections beyond the bound are dropped on arrival; the server serves again once they go', async () => {
    const held = [await connect(), await connect()];
    const third = await connect();
    expect(await third.closed).toBeLessThan(IDLE_MS / 2);
    for (const h of held) h.conn.destroy();
    await Promise.all(held.map((h) => h.closed));
    expect((await post(socket, '/VolumeDriver.Capabilities', '{}')).status).toBe(200);
  });
});
