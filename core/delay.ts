/** Resolves after `ms` (at once when ms ≤ 0). The timer does not keep the process alive. */
export function delay(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
