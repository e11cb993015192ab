const WIDTH = 30;

/** A progress bar on stderr: redrawn in place on a terminal, one line per change otherwise (logs, tests). */
export function progressLine(stream: NodeJS.WritableStream): { show(label: string, percent: number): void; done(): void } {
  const tty = (stream as NodeJS.WriteStream).isTTY === true;
  let last = '';
  return {
    show(label, percent) {
      const p = Math.max(0, Math.min(100, Math.round(percent)));
      const filled = Math.round((p / 100) * WIDTH);
      const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(p).padStart(3)}%`;
      if (line === last) return;
      last = line;
      stream.write(tty ? `\r${line}` : `${line}\n`);
    },
    done() {
      if (tty && last !== '') stream.write('\n');
      last = '';
    },
  };
}

/**
 * Waits `ms`, or less when `signal` aborts (Ctrl-C). The timer keeps the process alive, unlike
 * aws/delay's: a CLI waiting on nothing else would otherwise exit mid-wait.
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
