import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallCounter } from '../aws/call-counter.js';
import type { Driver } from '../drivers/driver.js';
import type { OperationContext } from '../core/context.js';
import type { VolumeOptions } from '../core/volume-options.js';
import type { StageOutcome, WorkMetrics } from '../core/metrics.js';

/** Seconds; protocol calls range from a cached Get (ms) to a Mount near dockerd's 120 s limit. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Seconds; a move's stages range from a tag write to a snapshot of many minutes. */
const MOVE_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

/** How the protocol server reports each request: the endpoint, and the work that serves it. */
export type RequestTracker = <T>(endpoint: string, work: () => Promise<T>) => Promise<T>;

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** The backings a request reached, filled in by the instrumented drivers while it runs. */
interface RequestScope {
  backings: Set<string>;
}

function backingLabel(scope: RequestScope): string {
  if (scope.backings.size === 0) return 'none';
  return scope.backings.size === 1 ? [...scope.backings][0]! : 'all';
}

/**
 * The plugin's Prometheus metrics, on their own registry (tests and several plugins in one process
 * do not collide). Off unless STOWAGE_METRICS_ADDR is set.
 */
export class Metrics implements WorkMetrics {
  readonly registry = new Registry();
  private readonly scope = new AsyncLocalStorage<RequestScope>();
  private readonly requestSeconds = new Histogram({
    name: 'stowage_request_duration_seconds',
    help: 'Docker volume protocol requests, by endpoint, the backing that served them and outcome',
    labelNames: ['endpoint', 'backing', 'outcome'],
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });
  private readonly awsCalls = new Counter({
    name: 'stowage_aws_calls_total',
    help: 'AWS requests sent, by operation and outcome (ok, throttled, error); retries included',
    labelNames: ['operation', 'outcome'],
    registers: [this.registry],
  });
  private readonly awsRetries = new Counter({
    name: 'stowage_aws_retries_total',
    help: 'AWS requests that were a retry of a throttled or failed one, by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  private readonly moveSeconds = new Histogram({
    name: 'stowage_move_stage_duration_seconds',
    help: 'Stages of cross-zone moves, by stage and outcome',
    labelNames: ['stage', 'outcome'],
    buckets: MOVE_BUCKETS,
    registers: [this.registry],
  });
  private readonly mountsInFlight = new Gauge({
    name: 'stowage_mounts_in_flight',
    help: 'Mounts a driver is working on right now, by backing',
    labelNames: ['backing'],
    registers: [this.registry],
  });
  private readonly attachmentsInFlight = new Gauge({
    name: 'stowage_attachments_in_flight',
    help: 'EBS attachments started and not yet attached or given up',
    registers: [this.registry],
  });
  private readonly fences = new Counter({
    name: 'stowage_fences_total',
    help: 'Holds of other instances broken by a forced detach (holder stopped, terminated or silent)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'stowage_' });
  }

  /** Counts every request `counter` records from now on. */
  watchCalls(counter: CallCounter): () => void {
    return counter.onRecord(({ operation, outcome, attempt }) => {
      this.awsCalls.inc({ operation, outcome });
      if (attempt > 1) this.awsRetries.inc({ operation });
    });
  }

  readonly trackRequest: RequestTracker = async (endpoint, work) => {
    const scope: RequestScope = { backings: new Set() };
    const end = this.requestSeconds.startTimer({ endpoint });
    try {
      const result = await this.scope.run(scope, work);
      end({ backing: backingLabel(scope), outcome: 'ok' });
      return result;
    } catch (err) {
      end({ backing: backingLabel(scope), outcome: 'error' });
      throw err;
    }
  };

  /** The same driver, telling the request it serves which backing did the work, and counting its Mounts in flight. */
  instrument(driver: Driver): Driver {
    const reached = <T>(work: () => Promise<T>): Promise<T> => {
      this.scope.getStore()?.backings.add(driver.backing);
      return work();
    };
    const inFlight = this.mountsInFlight;
    return {
      backing: driver.backing,
      mountpointOf: (name: string) => driver.mountpointOf(name),
      create: (name: string, options: VolumeOptions, ctx: OperationContext) => reached(() => driver.create(name, options, ctx)),
      remove: (name: string, ctx: OperationContext) => reached(() => driver.remove(name, ctx)),
      // Every driver is asked for a name; the request belongs to the one that has it.
      get: async (name: string, ctx: OperationContext) => {
        const found = await driver.get(name, ctx);
        if (found) this.scope.getStore()?.backings.add(driver.backing);
        return found;
      },
      list: (ctx: OperationContext) => reached(() => driver.list(ctx)),
      isMounted: (name: string, ctx: OperationContext) => driver.isMounted(name, ctx),
      unmount: (name: string, ctx: OperationContext) => reached(() => driver.unmount(name, ctx)),
      mount: (name: string, ctx: OperationContext) =>
        reached(async () => {
          inFlight.inc({ backing: driver.backing });
          try {
            return await driver.mount(name, ctx);
          } finally {
            inFlight.dec({ backing: driver.backing });
          }
        }),
    };
  }

  moveStage(stage: string, seconds: number, outcome: StageOutcome): void {
    this.moveSeconds.observe({ stage, outcome }, seconds);
  }

  attachStarted(): () => void {
    this.attachmentsInFlight.inc();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.attachmentsInFlight.dec();
    };
  }

  fenced(): void {
    this.fences.inc();
  }

  /** Serves `GET /metrics` in the Prometheus text format. */
  async listen(address: { host: string; port: number }): Promise<MetricsServer> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${port}/metrics`,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }
}
