import { createHash } from 'node:crypto';
import { DescribeVolumesCommand, type Filter } from '@aws-sdk/client-ec2';
import { allPages } from '../../aws/pages.js';
import { FOREIGN_TAGS } from '../../core/schema/tags.js';
import type { Candidate } from './adopt-checks.js';
import { tagOf } from './adopt-checks.js';
import { inEveryRegion, type OpsContext } from './context.js';
import { UsageError } from './exit-codes.js';

export const FOREIGN_PLUGINS = ['cloudstor', 'rexray'] as const;
export type ForeignPlugin = (typeof FOREIGN_PLUGINS)[number];

/** Which of another plugin's tags mark its volumes, which holds the name, and the narrowing the operator asked for. */
function selection(from: ForeignPlugin, scope: string | undefined): { filters: Filter[]; nameKey: string } {
  if (from === 'cloudstor') {
    // Cloudstor tags StackID with the MD5 of the stack id it was installed with, not the id itself.
    const stack = scope === undefined ? [] : [{ Name: `tag:${FOREIGN_TAGS.cloudstorStack}`, Values: [createHash('md5').update(scope).digest('hex')] }];
    return { filters: [{ Name: 'tag-key', Values: [FOREIGN_TAGS.cloudstorName] }, ...stack], nameKey: FOREIGN_TAGS.cloudstorName };
  }
  // `Name` alone marks nothing (every console-made volume has one): REX-Ray's own tag is required.
  const set = scope === undefined ? { Name: 'tag-key', Values: [FOREIGN_TAGS.rexraySet] } : { Name: `tag:${FOREIGN_TAGS.rexraySet}`, Values: [scope] };
  return { filters: [set], nameKey: FOREIGN_TAGS.rexrayName };
}

/**
 * The volumes another plugin tagged, in every target region, each under the name that plugin gave
 * it. One name on two volumes (two Cloudstor stacks, say) is refused: which one is the volume is
 * for the operator to say, with --stack-id / --rexray-tag or one `stowage adopt VOLUME-ID` each.
 */
export async function foreignCandidates(ctx: OpsContext, from: ForeignPlugin, scope: string | undefined): Promise<Candidate[]> {
  const { filters, nameKey } = selection(from, scope);
  const results = await inEveryRegion(ctx, (target) =>
    allPages(
      (token) => ctx.aws('DescribeVolumes', () => target.ec2.send(new DescribeVolumesCommand({ Filters: filters, MaxResults: 500, NextToken: token })), { region: target.region }),
      (page) => page.Volumes,
    ).then((volumes) => volumes.filter((v) => v.State !== 'deleting' && v.State !== 'deleted').map((volume) => ({ target, volume, name: tagOf(volume, nameKey) ?? '' }))),
  );
  const failed = results.find((r) => !r.ok);
  if (failed && !failed.ok) throw failed.error;
  const found = results.flatMap((r) => (r.ok ? r.value : []));
  const byName = new Map<string, Candidate[]>();
  for (const c of found) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  const twice = [...byName].filter(([, cs]) => cs.length > 1);
  if (twice.length > 0) {
    const narrow = from === 'cloudstor' ? '--stack-id STACK' : '--rexray-tag VALUE';
    throw new UsageError(
      `${twice.map(([name, cs]) => `${name || '(no name)'} is on ${cs.map((c) => c.volume.VolumeId).join(' and ')}`).join('; ')}: ` +
        `narrow with ${narrow}, or adopt each with stowage adopt VOLUME-ID --name NAME`,
    );
  }
  return found;
}
