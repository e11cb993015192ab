import { ApiError } from '../errors.js';
import type { Params } from '../query.js';
import type { Tags } from '../state.js';

/** EC2 filters and paging, shared by the Describe actions. */

export type FilterFields<T> = Record<string, (item: T) => (string | number | boolean | undefined)[]>;

/** EC2 filter values are globs: `*` any run, `?` one character, backslash escapes. */
function glob(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export function applyFilters<T extends { tags: Tags }>(items: T[], p: Params, fields: FilterFields<T>): T[] {
  const filters = p.list('Filter').map((f) => {
    const name = f.required('Name');
    const patterns = f.strings('Value').map(glob);
    let field = fields[name];
    if (name.startsWith('tag:')) field = (item) => [item.tags[name.slice(4)]];
    else if (name === 'tag-key') field = (item) => Object.keys(item.tags);
    if (!field) throw new ApiError('InvalidParameterValue', `The filter '${name}' is invalid`);
    return { field, patterns };
  });
  return items.filter((item) =>
    filters.every(({ field, patterns }) =>
      field(item).some((v) => v !== undefined && patterns.some((re) => re.test(String(v)))),
    ),
  );
}

/** Items by id, in the account's order; any unknown id fails the call, naming them all. */
export function byIds<T extends { id: string }>(items: T[], ids: string[], notFound: (missing: string[]) => ApiError): T[] {
  const missing = ids.filter((id) => !items.some((i) => i.id === id));
  if (missing.length) throw notFound(missing);
  return items.filter((i) => ids.includes(i.id));
}

/** MaxResults/NextToken paging; the token is the offset of the next page in the filtered list. */
export function page<T>(
  items: T[],
  p: Params,
  opts: { max: number; idsGiven: boolean; idSetName: string },
): { items: T[]; nextToken?: string } {
  const maxResults = p.int('MaxResults');
  const token = p.str('NextToken');
  if (maxResults === undefined && token === undefined) return { items };
  if (opts.idsGiven)
    throw new ApiError('InvalidParameterCombination', `The parameter ${opts.idSetName} cannot be used with the parameter maxResults`);
  if (maxResults !== undefined && (maxResults < 5 || maxResults > opts.max))
    throw new ApiError('InvalidParameterValue', `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and ${opts.max}.`);
  let start = 0;
  if (token !== undefined) {
    const offset = Buffer.from(token, 'base64url').toString();
    if (!/^\d+$/.test(offset)) throw new ApiError('InvalidParameterValue', `Invalid value '${token}' for nextToken`);
    start = Number(offset);
  }
  const end = start + (maxResults ?? opts.max);
  return {
    items: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
}
