/**
 * docs/iam-policy.json against the code: every EC2/EFS command the plugin can send is allowed, and
 * every mutating grant is held to this cluster's tag (or, for the heartbeat, to the one tag key).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Where the plugin's AWS calls live; localcloud/ answers them and is not the plugin. */
const SCANNED = ['aws', 'drivers', 'snapshot', 'cli', 'plugin', 'host'];
const SERVICES: Record<string, string> = { '@aws-sdk/client-ec2': 'ec2', '@aws-sdk/client-efs': 'elasticfilesystem' };
/**
 * Commands that only ever go to the embedded localcloud, never to AWS, so the policy must not
 * grant them. Keyed by file: the same command anywhere else fails the test.
 */
const LOCALCLOUD_ONLY: Record<string, string[]> = {
  // the embedded localcloud's one instance for this node (cli/backend.ts embeddedInstance)
  'cli/backend.ts': ['ec2:RunInstances'],
  // the embedded localcloud's file system and its mount targets (STOWAGE_EFS_ID unset)
  'cli/embedded-efs.ts': ['ec2:DescribeSubnets', 'elasticfilesystem:CreateFileSystem', 'elasticfilesystem:CreateMountTarget'],
};
const CLUSTER = 'REPLACE_WITH_STOWAGE_CLUSTER';
const CLUSTER_KEYS = ['aws:ResourceTag/stowage:cluster', 'aws:RequestTag/stowage:cluster'];

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const policy = JSON.parse(readFileSync(path.join(REPO, 'docs/iam-policy.json'), 'utf8')) as { Version: string; Statement: Statement[] };
const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);
const isRead = (action: string): boolean => /^[a-z0-9]+:(Describe|List|Get)/.test(action);

function sourceFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(REPO, dir), { withFileTypes: true });
  } catch {
    return []; // a folder not written yet
  }
  return entries.flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** IAM actions of the `…Command`s a file imports from an AWS client and constructs with `new`. */
export function sentActions(source: string): string[] {
  const actions: string[] = [];
  for (const m of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(@aws-sdk\/client-[a-z0-9-]+)'/g)) {
    const service = SERVICES[m[2]!];
    if (service === undefined) continue;
    for (const spec of m[1]!.split(',')) {
      const [imported, local = imported] = spec.replace(/^\s*type\s+/, '').trim().split(/\s+as\s+/);
      const name = /^([A-Za-z0-9]+)Command$/.exec(imported ?? '')?.[1];
      if (name !== undefined && new RegExp(`new\\s+${local}\\s*\\(`).test(source)) actions.push(`${service}:${name}`);
    }
  }
  return actions;
}

function codeActions(): Map<string, string[]> {
  const byAction = new Map<string, string[]>();
  for (const file of SCANNED.flatMap(sourceFiles)) {
    for (const action of sentActions(readFileSync(path.join(REPO, file), 'utf8'))) {
      if (LOCALCLOUD_ONLY[file]?.includes(action)) continue;
      byAction.set(action, [...(byAction.get(action) ?? []), file]);
    }
  }
  return byAction;
}

/** IAM action matching: `*` and `?` wildcards, case-insensitive. */
function matches(pattern: string, action: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(action);
}

function conditionKeys(s: Statement): string[] {
  return Object.values(s.Condition ?? {}).flatMap((byKey) => Object.keys(byKey));
}

test('the scanner finds the commands it must: a quiet scanner would pass anything', () => {
  expect(sentActions(`import { AttachVolumeCommand, type Volume, DescribeVolumesCommand as DV } from '@aws-sdk/client-ec2';
    send(new AttachVolumeCommand({})); send(new DV({}));`)).toEqual(['ec2:AttachVolume', 'ec2:DescribeVolumes']);
  expect(sentActions(`import { CreateAccessPointCommand } from '@aws-sdk/client-efs'; new CreateAccessPointCommand({});`))
    .toEqual(['elasticfilesystem:CreateAccessPoint']);
  // Imported for a type only, never sent: no permission needed.
  expect(sentActions(`import { DeleteVolumeCommand } from '@aws-sdk/client-ec2'; let c: DeleteVolumeCommand;`)).toEqual([]);
  const found = [...codeActions().keys()];
  expect(found).toEqual(expect.arrayContaining([
    'ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:CreateVolume', 'ec2:DeleteVolume', 'ec2:DescribeVolumes', 'ec2:DescribeInstances', 'ec2:CreateTags',
  ]));
});

test('every EC2 and EFS action the code can send is allowed by the policy', () => {
  const allowed = policy.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action));
  const missing = [...codeActions()]
    .filter(([action]) => !allowed.some((pattern) => matches(pattern, action)))
    .map(([action, files]) => `${action} (sent from ${files.join(', ')})`);
  expect(missing).toEqual([]);
});

test('commands sent only to the embedded localcloud are not granted', () => {
  const granted = policy.Statement.flatMap((s) => list(s.Action));
  for (const action of Object.values(LOCALCLOUD_ONLY).flat()) {
    expect(granted.filter((pattern) => matches(pattern, action))).toEqual([]);
  }
});

test('no wildcard grants of EC2 or EFS actions, and reads are the only unconditioned grants on every resource', () => {
  for (const s of policy.Statement) {
    for (const action of list(s.Action)) {
      if (/^(ec2|elasticfilesystem):/.test(action)) expect(action).not.toMatch(/[*?]/);
    }
    if (list(s.Resource).includes('*') && s.Condition === undefined) {
      expect(list(s.Action).filter((a) => !isRead(a))).toEqual([]);
    }
  }
});

test('every mutating EC2/EFS grant is held to the cluster tag, or to the heartbeat tag key alone', () => {
  const unscoped: string[] = [];
  for (const s of policy.Statement) {
    const mutating = list(s.Action).filter((a) => /^(ec2|elasticfilesystem):/.test(a) && !isRead(a));
    if (mutating.length === 0) continue;
    const keys = conditionKeys(s);
    if (keys.some((k) => CLUSTER_KEYS.includes(k))) continue;
    if (s.Sid === 'HeartbeatTagOnInstances') {
      expect(mutating).toEqual(['ec2:CreateTags']);
      expect(list(s.Resource)).toEqual(['arn:aws:ec2:*:*:instance/*']);
      expect(s.Condition).toEqual({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['stowage:heartbeat'] }, Null: { 'aws:TagKeys': 'false' } });
      continue;
    }
    if (s.Sid === 'AttachDetachOnInstancesVolumeSideIsTagChecked') {
      // Instances carry no cluster tag; the volume half of the same call is tag-checked above.
      expect(mutating.sort()).toEqual(['ec2:AttachVolume', 'ec2:DetachVolume']);
      expect(list(s.Resource)).toEqual(['arn:aws:ec2:*:*:instance/*']);
      continue;
    }
    unscoped.push(`${s.Sid}: ${mutating.join(', ')}`);
  }
  expect(unscoped).toEqual([]);
});

test('each volume-side action that changes or removes data needs the cluster tag on the resource', () => {
  for (const action of ['ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:DeleteVolume', 'ec2:DeleteSnapshot', 'elasticfilesystem:DeleteAccessPoint']) {
    const grants = policy.Statement.filter((s) => list(s.Action).includes(action) && !list(s.Resource).every((r) => r.includes(':instance/')));
    expect(grants.length).toBeGreaterThan(0);
    for (const s of grants) expect(s.Condition?.StringEquals?.['aws:ResourceTag/stowage:cluster']).toBe(CLUSTER);
  }
});

test('KMS use is only through EC2 (encrypted volumes with a customer key)', () => {
  for (const s of policy.Statement.filter((st) => list(st.Action).some((a) => a.startsWith('kms:')))) {
    expect(s.Condition).toEqual({ StringLike: { 'kms:ViaService': 'ec2.*.amazonaws.com' } });
  }
});

test('one cluster placeholder, the same everywhere, for the operator to replace', () => {
  const values = policy.Statement.flatMap((s) =>
    Object.values(s.Condition ?? {}).flatMap((byKey) => CLUSTER_KEYS.flatMap((k) => (byKey[k] === undefined ? [] : list(byKey[k]!)))),
  );
  expect(values.length).toBeGreaterThan(5);
  expect(new Set(values)).toEqual(new Set([CLUSTER]));
  expect(policy.Version).toBe('2012-10-17');
  expect(new Set(policy.Statement.map((s) => s.Sid)).size).toBe(policy.Statement.length);
});
