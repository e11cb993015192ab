/**
 * docs/iam-policy-adopt.json, the grant `stowage adopt` needs on top of the node policy: tagging
 * volumes only, a claim only of a volume no cluster holds and only for this cluster, and after the
 * claim only the keys the schema says adopt writes. Whether IAM evaluates it so needs an AWS account.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TAGS_WRITTEN_BY_ADOPT, Tags } from '../../../core/schema/tags.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLUSTER = 'REPLACE_WITH_STOWAGE_CLUSTER';

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition: Record<string, Record<string, string | string[]>>;
}

const policy = JSON.parse(readFileSync(path.join(REPO, 'docs/iam-policy-adopt.json'), 'utf8')) as { Version: string; Statement: Statement[] };
const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

test('only CreateTags on volumes, always for this cluster, with the keys pinned and never none', () => {
  expect(policy.Version).toBe('2012-10-17');
  for (const s of policy.Statement) {
    expect([s.Effect, list(s.Action), list(s.Resource)]).toEqual(['Allow', ['ec2:CreateTags'], ['arn:aws:ec2:*:*:volume/*']]);
    expect(s.Condition.StringEquals?.[`aws:RequestTag/${Tags.cluster}`]).toBe(CLUSTER);
    // ForAllValues holds for a request without keys: Null pins that there are some.
    expect(s.Condition.Null?.['aws:TagKeys']).toBe('false');
  }
});

test('the claim: only the cluster key, only on a volume that carries no cluster tag', () => {
  const claims = policy.Statement.filter((s) => s.Condition.Null?.[`aws:ResourceTag/${Tags.cluster}`] === 'true');
  expect(claims.map((s) => list(s.Condition['ForAllValues:StringEquals']!['aws:TagKeys']!))).toEqual([[Tags.cluster]]);
});

test('after the claim: this cluster\'s volumes, the keys adopt writes and no others', () => {
  const named = policy.Statement.filter((s) => s.Condition.StringEquals?.[`aws:ResourceTag/${Tags.cluster}`] === CLUSTER);
  expect(named.length).toBe(1);
  expect(new Set(list(named[0]!.Condition['ForAllValues:StringEquals']!['aws:TagKeys']!))).toEqual(new Set(TAGS_WRITTEN_BY_ADOPT));
});
