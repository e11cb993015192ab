import { allPages } from '../../../aws/pages.js';

describe('allPages', () => {
  test('follows NextToken to the last page and gathers every item in order', async () => {
    const pages: Record<string, { Items?: number[]; NextToken?: string }> = {
      first: { Items: [1, 2], NextToken: 'b' },
      b: { NextToken: 'c' },
      c: { Items: [3] },
    };
    const asked: Array<string | undefined> = [];
    const items = await allPages(
      async (token) => {
        asked.push(token);
        return pages[token ?? 'first']!;
      },
      (page) => page.Items,
    );
    expect(items).toEqual([1, 2, 3]);
    expect(asked).toEqual([undefined, 'b', 'c']);
  });

  test('a page that fails fails the whole listing: no partial answer', async () => {
    let calls = 0;
    const listing = allPages(
      async () => {
        if (++calls === 2) throw new Error('InternalError');
        return { Items: [1], NextToken: 'next' };
      },
      (page) => page.Items,
    );
    await expect(listing).rejects.toThrow('InternalError');
  });
});
