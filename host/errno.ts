/** True when `err` is a system error with one of `codes` (`ENOENT`, `EBUSY`, …). */
// Duck-typed: errors from node:fs do not pass `instanceof Error` inside jest's module sandbox.
export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && codes.includes(code);
}
