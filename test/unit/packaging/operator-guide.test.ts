/**
 * docs/operators.md against what it documents: every condition key the shipped policies use is named
 * in section 1, the metadata advice matches the plugin's host networking everywhere, every statement
 * the guide names is in the policy, and every setting the managed plugin offers has a row in section 3.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(REPO, file), 'utf8');
const guide = read('docs/operators.md');
const section1 = guide.slice(guide.indexOf('## 1. '), guide.indexOf('## 2. '));
const section3 = guide.slice(guide.indexOf('## 3. '), guide.indexOf('## 4. '));

type Policy = { Statement: { Sid: string; Resource: string | string[]; Condition?: Record<string, Record<string, unknown>> }[] };

test('every condition key and policy variable of the shipped policies is named, and every statement', () => {
  for (const file of ['docs/iam-policy.json', 'docs/iam-policy-strict.json']) {
    const policy = JSON.parse(read(file)) as Policy;
    const keys = policy.Statement.flatMap((s) => Object.values(s.Condition ?? {}).flatMap((byKey) => Object.keys(byKey)));
    const variables = JSON.stringify(policy).match(/\$\{[^}]+\}/g) ?? [];
    for (const name of [...keys, ...variables]) expect([file, name, section1.includes(name)]).toEqual([file, name, true]);
  }
  for (const s of (JSON.parse(read('docs/iam-policy.json')) as Policy).Statement) expect([s.Sid, section1.includes(s.Sid)]).toEqual([s.Sid, true]);
});

test('IMDS: IMDSv2 required, hop limit 1 because the plugin is on the host network, and containers firewalled off', () => {
  expect((JSON.parse(read('config.json')) as { network: { type: string } }).network.type).toBe('host');
  expect(section1).toContain('--http-tokens required --http-put-response-hop-limit 1');
  expect(section1).not.toMatch(/hop[- ]limit (of )?(at least )?2\b/i);
  expect(section1).toContain('iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT');
});

test('the rest of the guide agrees: no other hop limit, and only statements the policy has', () => {
  expect(guide).not.toMatch(/hop[- ]limit (of |to )?(at least )?2\b/i);
  const sids = new Set((JSON.parse(read('docs/iam-policy.json')) as Policy).Statement.map((s) => s.Sid));
  // Statement names are long CamelCase in backticks; API names in the guide have at most three words.
  const named = [...guide.matchAll(/`([A-Z][a-z]+(?:[A-Z][a-z0-9]*){3,})`/g)].map((m) => m[1]!);
  expect(named.length).toBeGreaterThan(0);
  for (const name of named) expect([name, sids.has(name)]).toEqual([name, true]);
});

test('every setting the managed plugin offers has a row in section 3', () => {
  const env = (JSON.parse(read('config.json')) as { env: { name: string; settable?: string[] }[] }).env;
  const documented = section3.split('\n').filter((line) => line.startsWith('| `')).map((row) => row.split('|')[1]!);
  for (const { name } of env.filter((e) => e.settable)) expect([name, documented.some((cell) => cell.includes(`\`${name}\``))]).toEqual([name, true]);
});
