/**
 * Request bodies are bounded (issue 16.6): past 1 MiB, declared or streamed, the emulator answers
 * 413 without holding the body, and goes on serving.
 */
import http from 'node:http';
import { DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { startTestCloud, type TestCloud } from './helpers.js';

const MIB = 1024 * 1024;
let t: TestCloud;

beforeAll(async () => {
  t = await startTestCloud();
});
afterAll(async () => t?.close());

/** Sends `chunks` with chunked encoding, so no Content-Length announces the size. */
function streamed(path: string, chunks: number, chunkBytes: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${t.lc.url}${path}`, { method: 'POST' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(chunkBytes, 0x20);
    for (let i = 0; i < chunks; i++) req.write(chunk);
    req.end();
  });
}

test('a body declared larger than 1 MiB gets 413, on every API', async () => {
  for (const path of ['/', '/2015-02-01/file-systems', '/_localcloud/faults']) {
    const res = await fetch(`${t.lc.url}${path}`, { method: 'POST', body: 'x'.repeat(MIB + 1) });
    expect([path, res.status]).toEqual([path, 413]);
    expect(await res.text()).toContain('request body larger than');
  }
  expect((await t.ec2.send(new DescribeVolumesCommand({}))).Volumes).toEqual([]);
});

test('a streamed body that passes 1 MiB gets 413 too; one within it is served', async () => {
  expect(await streamed('/_localcloud/faults', 40, 64 * 1024)).toMatchObject({ status: 413 });
  // JSON padded with spaces to just under the limit: read whole and answered.
  const padded = await fetch(`${t.lc.url}/_localcloud/faults`, { method: 'POST', body: `{}${' '.repeat(MIB - 2)}` });
  expect(padded.status).toBe(200);
  expect((await t.ec2.send(new DescribeVolumesCommand({}))).Volumes).toEqual([]);
});
