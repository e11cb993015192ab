/**
 * Every item of an AWS call paginated by NextToken. `fetch` sends one page, given the token the
 * previous page returned (undefined for the first), through callAws so each page has its own
 * retries and is counted; `items` picks a page's items.
 */
export async function allPages<P extends { NextToken?: string | undefined }, T>(
  fetch: (token: string | undefined) => Promise<P>,
  items: (page: P) => T[] | undefined,
): Promise<T[]> {
  const found: T[] = [];
  let token: string | undefined;
  do {
    const page = await fetch(token);
    found.push(...(items(page) ?? []));
    token = page.NextToken;
  } while (token);
  return found;
}
