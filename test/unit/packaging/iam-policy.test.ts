/**
 * docs/iam-policy.json against the code: every EC2/EFS command the plugin can send is allowed, every
 * mutating grant is held to this cluster's tag, the tag keys written or deleted after create are the
 * schema's, and a node reaches no instance but its own except to fence. docs/iam-policy-strict.json
 * agrees with the plugin-side cost bounds. The condition keys are those of AWS's Service
 * Authorization Reference (docs/operators.md, section 1, cites them); whether IAM evaluates them as
 * intended needs an AWS account, which these tests do not have.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TAGS_DELETED, TAGS_WRITTEN_AFTER_CREATE } from '../../../core/schema/tags.js';
import { SETTINGS } from '../../../plugin/config.js';

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
/** The calling instance's own ARN (a policy variable): a node's grants on instances name only itself. */
const OWN_INSTANCE = '${ec2:SourceInstanceARN}';
const INSTANCES = 'arn:aws:ec2:*:*:instance/*';

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const readPolicy = (file: string) => JSON.parse(readFileSync(path.join(REPO, file), 'utf8')) as { Version: string; Statement: Statement[] };
const policy = readPolicy('docs/iam-policy.json');
const strict = readPolicy('docs/iam-policy-strict.json');
const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);
const isInstance = (resource: string): boolean => resource === OWN_INSTANCE || resource.includes(':instance/');
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

/**
 * The resource types each mutating call is authorized against (Service Authorization Reference,
 * "Actions defined by Amazon EC2" / "by Amazon Elastic File System"), as the code uses them: each
 * needs a grant, or the call is denied although its action is listed.
 */
const RESOURCES_OF: Record<string, string[]> = {
  'ec2:AttachVolume': ['volume', 'instance'],
  'ec2:DetachVolume': ['volume', 'instance'],
  'ec2:CreateVolume': ['volume', 'snapshot'],
  'ec2:DeleteVolume': ['volume'],
  // stowage modify (Service Authorization Reference: ModifyVolume, resource type volume*, aws:ResourceTag).
  'ec2:ModifyVolume': ['volume'],
  'ec2:CreateSnapshot': ['volume', 'snapshot'],
  'ec2:CopySnapshot': ['snapshot'],
  'ec2:DeleteSnapshot': ['snapshot'],
  // Volumes and snapshots at create; later snapshot-current on volumes, the heartbeat on instances.
  'ec2:CreateTags': ['volume', 'snapshot', 'instance'],
  'ec2:DeleteTags': ['volume'],
  'elasticfilesystem:CreateAccessPoint': ['file-system'],
  'elasticfilesystem:DeleteAccessPoint': ['access-point'],
};
const RESOURCE_PATTERN: Record<string, (r: string) => boolean> = {
  volume: (r) => r.includes(':volume/'),
  snapshot: (r) => r.includes(':snapshot/'),
  instance: isInstance,
  'file-system': (r) => r.includes(':file-system/'),
  'access-point': (r) => r.includes(':access-point/'),
};

test('every mutating action the code sends is granted on each resource type it is authorized against', () => {
  const mutating = [...codeActions().keys()].filter((a) => !isRead(a));
  expect(mutating.filter((a) => RESOURCES_OF[a] === undefined)).toEqual([]);
  const missing = mutating.flatMap((action) =>
    RESOURCES_OF[action]!.filter((type) => !policy.Statement.some((s) => s.Effect === 'Allow' && list(s.Action).includes(action) && list(s.Resource).some(RESOURCE_PATTERN[type]!)))
      .map((type) => `${action} on ${type}`),
  );
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

test('every mutating EC2/EFS grant is held to the cluster tag', () => {
  const unscoped = policy.Statement.filter((s) => {
    const mutating = list(s.Action).some((a) => /^(ec2|elasticfilesystem):/.test(a) && !isRead(a));
    return mutating && !conditionKeys(s).some((k) => CLUSTER_KEYS.includes(k));
  });
  expect(unscoped.map((s) => s.Sid)).toEqual([]);
});

test('each volume-side action that changes or removes data needs the cluster tag on the resource', () => {
  for (const action of ['ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:DeleteVolume', 'ec2:DeleteSnapshot', 'elasticfilesystem:DeleteAccessPoint']) {
    const grants = policy.Statement.filter((s) => list(s.Action).includes(action) && !list(s.Resource).some(isInstance));
    expect(grants.length).toBeGreaterThan(0);
    for (const s of grants) expect(s.Condition?.StringEquals?.['aws:ResourceTag/stowage:cluster']).toBe(CLUSTER);
  }
});

test('on instances: attach and heartbeat only on the caller\'s own, detach (fencing) only on this cluster\'s', () => {
  const onInstances = policy.Statement.filter((s) => s.Effect === 'Allow' && list(s.Resource).some(isInstance));
  const grants = onInstances.flatMap((s) => list(s.Action).map((a) => `${a} on ${list(s.Resource).join(', ')}`)).sort();
  expect(grants).toEqual([`ec2:AttachVolume on ${OWN_INSTANCE}`, `ec2:CreateTags on ${OWN_INSTANCE}`, `ec2:DetachVolume on ${INSTANCES}`]);
  // The instance must carry the cluster tag too: an instance of another cluster is never touched.
  for (const s of onInstances) expect(s.Condition?.StringEquals?.['aws:ResourceTag/stowage:cluster']).toBe(CLUSTER);
});

/** The keys a CreateTags or DeleteTags grant allows, or undefined when it does not pin them. */
function pinnedKeys(s: Statement): string[] | undefined {
  const keys = s.Condition?.['ForAllValues:StringEquals']?.['aws:TagKeys'];
  // ForAllValues is true when the request has no keys at all (a DeleteTags without keys deletes every tag).
  return keys !== undefined && s.Condition?.Null?.['aws:TagKeys'] === 'false' ? list(keys) : undefined;
}

test('DeleteTags: only the keys the schema says Stowage deletes, and never without keys', () => {
  const grants = policy.Statement.filter((s) => list(s.Action).includes('ec2:DeleteTags'));
  expect(grants.length).toBeGreaterThan(0);
  for (const s of grants) expect(pinnedKeys(s)).toBeDefined();
  expect(new Set(grants.flatMap((s) => pinnedKeys(s)!))).toEqual(new Set(TAGS_DELETED));
});

test('CreateTags after create: only the keys the schema says are written later', () => {
  const grants = policy.Statement.filter((s) => list(s.Action).some((a) => a === 'ec2:CreateTags' || a === 'elasticfilesystem:TagResource'));
  // Tagging as part of a create is bound to that create (ec2:CreateAction / elasticfilesystem:CreateAction).
  const later = grants.filter((s) => s.Condition?.StringEquals?.['ec2:CreateAction'] === undefined && s.Condition?.StringEquals?.['elasticfilesystem:CreateAction'] === undefined);
  for (const s of later) expect([s.Sid, pinnedKeys(s)]).toEqual([s.Sid, expect.any(Array)]);
  expect(new Set(later.flatMap((s) => pinnedKeys(s) ?? []))).toEqual(new Set(TAGS_WRITTEN_AFTER_CREATE));
});

test('a restore reads only this account\'s snapshots of this cluster', () => {
  const restores = policy.Statement.filter((s) => list(s.Action).includes('ec2:CreateVolume') && list(s.Resource).some((r) => r.includes(':snapshot/')));
  expect(restores.length).toBeGreaterThan(0);
  for (const s of restores) {
    expect(s.Condition?.StringEquals).toMatchObject({ 'aws:ResourceAccount': '${aws:PrincipalAccount}', 'aws:ResourceTag/stowage:cluster': CLUSTER });
  }
});

test('EFS access points are made only on file systems tagged for this cluster', () => {
  const grants = policy.Statement.filter((s) => list(s.Action).includes('elasticfilesystem:CreateAccessPoint'));
  expect(grants.length).toBeGreaterThan(0);
  for (const s of grants) expect(s.Condition?.StringEquals?.['aws:ResourceTag/stowage:cluster']).toBe(CLUSTER);
});

test('KMS: only the operator\'s key ARNs, only through EC2, and grants only for EC2 itself', () => {
  const kms = policy.Statement.filter((st) => list(st.Action).some((a) => a.startsWith('kms:')));
  expect(kms.flatMap((s) => list(s.Action)).sort()).toEqual(['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo']);
  for (const s of kms) {
    expect(list(s.Resource)).toEqual(['REPLACE_WITH_KMS_KEY_ARN']);
    expect(s.Condition?.StringLike).toEqual({ 'kms:ViaService': 'ec2.*.amazonaws.com' });
    if (list(s.Action).includes('kms:CreateGrant')) {
      expect(list(s.Action)).toEqual(['kms:CreateGrant']);
      expect(s.Condition?.Bool).toEqual({ 'kms:GrantIsForAWSResource': 'true' });
    }
  }
});

test('the strict policy only denies, on the volume being created, beyond the plugin\'s default cost bounds', () => {
  expect(strict.Version).toBe('2012-10-17');
  for (const s of strict.Statement) expect([s.Effect, s.Action, s.Resource]).toEqual(['Deny', 'ec2:CreateVolume', 'arn:aws:ec2:*:*:volume/*']);
  const bound = (key: string) => strict.Statement.find((s) => s.Condition?.NumericGreaterThan?.[key] !== undefined)?.Condition?.NumericGreaterThan?.[key];
  expect(bound('ec2:VolumeSize')).toBe(SETTINGS.STOWAGE_MAX_SIZE_GIB.default);
  expect(bound('ec2:VolumeIops')).toBe(SETTINGS.STOWAGE_MAX_IOPS.default);
  // A negated operator is true when the key is absent; Null keeps the type rule to requests that name one.
  const types = strict.Statement.find((s) => s.Condition?.StringNotEquals?.['ec2:VolumeType'] !== undefined);
  expect(types?.Condition).toEqual({ StringNotEquals: { 'ec2:VolumeType': ['gp3', 'gp2'] }, Null: { 'ec2:VolumeType': 'false' } });
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
