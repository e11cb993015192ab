/**
 * `describe` for suites that need root (loop devices, mkfs, mount). A suite that quietly skipped
 * under a normal user let a non-root `npm test` pass without touching a disk, so instead it fails,
 * naming itself; STOWAGE_TEST_ALLOW_SKIP=1 makes the skip deliberate.
 */
export function asRoot(name: string, fn: () => void): void {
  if (process.getuid?.() === 0) {
    describe(name, fn);
  } else if (process.env.STOWAGE_TEST_ALLOW_SKIP === '1') {
    describe.skip(name, fn);
  } else {
    // The body is not even registered: its beforeAll would need root too.
    describe(name, () => {
      test('needs root', () => {
        throw new Error(`could not run "${name}": it needs root (loop devices, mkfs, mount) and runs as uid ${process.getuid?.()}; run as root, or set STOWAGE_TEST_ALLOW_SKIP=1 to skip it`);
      });
    });
  }
}
