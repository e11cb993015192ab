/**
 * fast-check arbitraries for docker.volumedriver/1.0 requests: the endpoints dockerd calls and some
 * it never does, JSON bodies whose fields are right, wrong, hostile or absent, and raw bytes that
 * are not JSON at all (truncated, huge, deeply nested, invalid UTF-8).
 */
import fc from 'fast-check';
import { OPTION_KEYS } from '../../core/volume-options.js';

export const ENDPOINTS = [
  '/Plugin.Activate', '/VolumeDriver.Capabilities', '/VolumeDriver.Create', '/VolumeDriver.Remove', '/VolumeDriver.Mount',
  '/VolumeDriver.Unmount', '/VolumeDriver.Path', '/VolumeDriver.Get', '/VolumeDriver.List',
] as const;

/** Names that reach a path or a log line if validation lets them through. */
const HOSTILE_STRINGS = [
  '', '.', '..', '../x', '../../etc', '/etc/passwd', 'a/b', 'a\\b', 'a\u0000b', '-rf', ' x', 'x ', 'a'.repeat(129),
  '%2e%2e', 'ä', '$(id)', '`id`', 'a\nb', '__proto__', 'constructor',
];

export interface RequestSpec {
  method: string;
  route: string;
  body: string | Buffer;
  contentType: string;
}

/**
 * A small pool of valid names and mount IDs, so random sequences also create, mount, unmount and
 * remove the same volumes, next to fresh valid names and everything invalid.
 */
export function requestArbitrary(names: readonly string[], ids: readonly string[], validOpts: fc.Arbitrary<Record<string, string>>): fc.Arbitrary<RequestSpec> {
  const validName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,20}$/) });
  const anyName = fc.oneof(
    { weight: 6, arbitrary: validName },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
  const anyId = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...ids) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,70}$/) },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
  );
  const anyOpts = fc.oneof(
    { weight: 4, arbitrary: validOpts },
    { weight: 2, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...OPTION_KEYS), fc.string({ maxLength: 12 })), fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...HOSTILE_STRINGS)), { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
  const objectBody = fc
    .record({ Name: anyName, Opts: anyOpts, ID: anyId, Extra: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] })
    .map((b) => JSON.stringify(b));
  const rawBody = fc.oneof(
    fc.constant(''),
    fc.string({ maxLength: 60 }),
    fc.json({ maxDepth: 3 }),
    objectBody.chain((json) => fc.nat({ max: Math.max(0, json.length - 1) }).map((cut) => json.slice(0, cut))),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    fc.integer({ min: 1_000, max: 200_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
    fc.integer({ min: 1_000, max: 60_000 }).map((depth) => '{"Name":'.repeat(depth) + '"x"' + '}'.repeat(depth)),
    fc.integer({ min: 1_000, max: 60_000 }).map((depth) => `{"Name":"deep","Opts":{"size":${'['.repeat(depth)}${']'.repeat(depth)}}}`),
    // Around the 1 MiB body limit, on both sides.
    fc.integer({ min: 1024 * 1024 - 64, max: 1024 * 1024 + 64 }).map((n) => JSON.stringify({ Name: names[0], Opts: { size: '1' } }).padEnd(n, ' ')),
    fc.integer({ min: 1, max: 3 }).map((mib) => JSON.stringify({ Name: names[0], Opts: { x: 'y'.repeat(mib * 1024 * 1024) } })),
  );
  const route = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...ENDPOINTS) },
    { weight: 1, arbitrary: fc.constantFrom('/', '/VolumeDriver.', '/volumedriver.create', '/VolumeDriver.Create/', '/VolumeDriver.Create?x=1', '//VolumeDriver.Get', '/../VolumeDriver.Get', '/%2e%2e/x') },
    { weight: 1, arbitrary: fc.stringMatching(/^\/[A-Za-z0-9._%~-]{0,30}$/) },
  );
  return fc.record({
    method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') }),
    route,
    body: fc.oneof({ weight: 5, arbitrary: objectBody }, { weight: 2, arbitrary: rawBody }),
    contentType: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('application/json', 'application/vnd.docker.plugins.v1.2+json') },
      { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', '') },
    ),
  }).map(printable);
}

/** Counterexamples print their first bytes only: a 3 MiB body would bury the report. */
function printable(spec: RequestSpec): RequestSpec {
  return Object.assign(spec, {
    [fc.toStringMethod]: () => `${spec.method} ${spec.route} [${spec.contentType}] ${JSON.stringify(String(spec.body).slice(0, 200))}${spec.body.length > 200 ? `… (${spec.body.length} bytes)` : ''}`,
  });
}

/** Correct requests on the pool's names, so a sequence also walks real lifecycles (create, mount, unmount, remove). */
export function lifecycleArbitrary(names: readonly string[], ids: readonly string[], validOpts: fc.Arbitrary<Record<string, string>>): fc.Arbitrary<RequestSpec> {
  const name = fc.constantFrom(...names);
  const id = fc.constantFrom(...ids);
  const body = fc.oneof(
    fc.record({ route: fc.constant('/VolumeDriver.Create'), b: fc.record({ Name: name, Opts: validOpts }) }),
    fc.record({ route: fc.constantFrom('/VolumeDriver.Mount', '/VolumeDriver.Unmount'), b: fc.record({ Name: name, ID: id }) }),
    fc.record({ route: fc.constantFrom('/VolumeDriver.Remove', '/VolumeDriver.Get', '/VolumeDriver.Path'), b: fc.record({ Name: name }) }),
  );
  return body.map(({ route, b }) => printable({ method: 'POST', route, body: JSON.stringify(b), contentType: 'application/json' }));
}
