import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { HeraldError } from '../../core/errors.js';

/** kcat is missing, or its mock cluster did not come up. */
export class MockClusterError extends HeraldError {
  constructor(message: string) {
    super('HERALD_KAFKA_MOCK_CLUSTER', message);
  }
}

export interface MockClusterOptions {
  /** Brokers in the mock cluster. Default 3. */
  readonly brokers?: number;
  /** How long to wait for kcat to print the bootstrap list. Default 10 000 ms. */
  readonly startTimeoutMs?: number;
  /** kcat binary. Default `kcat` on the PATH. */
  readonly kcat?: string;
}

const BOOTSTRAP = /replaced with (\S+)/;

/**
 * A librdkafka mock cluster hosted by a `kcat` child process: it speaks the real Kafka wire
 * protocol, so any client in any process can connect to its bootstrap list. It keeps everything
 * in memory: stopping it loses every topic, record and committed offset. For local trials and
 * tests only; it is not a broker (topics auto-create with 4 partitions, some admin calls fail).
 */
export class MockCluster {
  private constructor(
    private child: ChildProcess,
    /** `host:port,host:port,...` of the brokers. */
    readonly bootstrap: string,
    private readonly options: MockClusterOptions,
  ) {}

  /** True when the kcat binary can be run. */
  static available(kcat = 'kcat'): boolean {
    return spawnSync(kcat, ['-V'], { stdio: 'ignore' }).status === 0;
  }

  /** Starts kcat with a mock cluster and waits for its bootstrap list. */
  static async start(options: MockClusterOptions = {}): Promise<MockCluster> {
    const { child, bootstrap } = await launch(options);
    return new MockCluster(child, bootstrap, options);
  }

  /** The kcat process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Kills the cluster and starts a new, empty one. The new cluster listens on new ports, so
   * `bootstrap` changes: clients of the old one must be reconnected by the caller.
   */
  async restart(): Promise<MockCluster> {
    await this.stop();
    const { child, bootstrap } = await launch(this.options);
    this.child = child;
    (this as { bootstrap: string }).bootstrap = bootstrap;
    return this;
  }

  /** Kills the kcat process (by its pid) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.ref(); // keep the event loop alive until the exit is seen
    child.kill('SIGKILL');
    await exited;
  }
}

async function launch(options: MockClusterOptions): Promise<{ child: ChildProcess; bootstrap: string }> {
  const brokers = options.brokers ?? 3;
  const kcat = options.kcat ?? 'kcat';
  const child = spawn(
    kcat,
    [
      '-b',
      'ignored:9092',
      '-X',
      `test.mock.num.brokers=${brokers}`,
      '-C',
      '-t',
      'herald-mock-keepalive',
      '-q',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new MockClusterError(
          `kcat printed no bootstrap list within ${options.startTimeoutMs ?? 10_000} ms: ${stderr.trim()}`,
        ),
      );
    }, options.startTimeoutMs ?? 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new MockClusterError(`cannot run ${kcat} (${err.message}); install it with: apt-get install kcat`),
      );
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new MockClusterError(`kcat exited with ${String(code)} before the cluster was up: ${stderr.trim()}`),
      );
    });
    child.stderr!.setEncoding('utf8');
    const onData = (chunk: string): void => {
      stderr += chunk;
      const match = BOOTSTRAP.exec(stderr);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stderr!.off('data', onData);
      child.stderr!.resume(); // keep draining so kcat never blocks on a full pipe
      child.unref();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      resolve({ child, bootstrap: match[1]! });
    };
    child.stderr!.on('data', onData);
  });
}
