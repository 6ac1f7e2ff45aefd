import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Repository } from '../repositories/repository.js';
import { QueueHandle } from './handle.js';
import { DurableQueue } from './queue.js';
import type { QueueDeps, QueueSettings } from './settings.js';
import { SpoolWriter } from './spool-writer.js';
import type { SpoolOptions } from './spool-writer.js';
import { lockStateDir, unlockStateDir } from './state-lock.js';

/**
 * Durable delivery: every scraped profile is written once, to a shared spool
 * segment, and synced before submit() resolves; only then does each
 * repository's queue see it. A crash can therefore never leave a profile
 * with one repository and lost for another.
 *
 * Layout under `state_dir/queues/`:
 *
 *   .spool/<id>.seg          the segment being appended to (a name to write through)
 *   <repository>/<id>.seg    a hard link to each segment the repository still needs
 *   <repository>/<id>.done   offsets of the segment's items it has finished
 *   <repository>/preparing   the item whose prepare() runs (blank when none)
 *   <repository>/quarantine/ items given up on (damaged, or failed to prepare), moved aside
 *
 * The link count is the reference count: a segment's disk space comes back
 * when the last repository has finished its items and removed its link. One
 * file per segment instead of one per profile because creating a file costs
 * far more than appending (see bench/delivery.ts).
 */
export interface Spool {
  /** The state_dir it was opened in (absolute). */
  readonly stateDir: string;
  /** `state_dir/queues`. */
  readonly root: string;
  /** The handles activate() made the ones that send, by repository name. */
  readonly outboxes: ReadonlyMap<string, QueueHandle>;
  /** Hands a profile to every active repository's queue; resolves once it is durable, never waits for a repository. */
  submit(profile: ScrapedProfile): Promise<void>;
  /** Binds a repository to its queue (`queues/<name>`, read from disk the first time). Nothing is sent until activate(). */
  attach(repository: Repository, settings: QueueSettings): Promise<QueueHandle>;
  /**
   * Makes these handles the ones that send and the repositories that receive
   * new profiles. A queue whose handle is not in the set stops sending; its
   * items stay on disk.
   */
  activate(handles: ReadonlyMap<string, QueueHandle>): void;
  /** The per-repository queue, by name. */
  queue(name: string): DurableQueue | undefined;
  /** Commits what is pending, stops every queue (sends in flight get `deadlineMs`), notes what is finished. Idempotent. */
  close(deadlineMs: number): Promise<void>;
}

const SPOOL_DIR = '.spool';

/** Opens (creating) `stateDir/queues`, clearing what a previous run left in `.spool/`. */
export async function openSpool(stateDir: string, deps: QueueDeps, options: SpoolOptions = {}): Promise<Spool> {
  const root = join(resolve(stateDir), 'queues');
  const spoolDir = join(root, SPOOL_DIR);
  try {
    await mkdir(spoolDir, { recursive: true });
  } catch (err) {
    throw new Error(`state_dir ${JSON.stringify(stateDir)}: cannot create ${spoolDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; set state_dir to a writable folder (under systemd, StateDirectory= sets $STATE_DIRECTORY)`, { cause: err });
  }
  await lockStateDir(root);
  // The previous run's open segment: its records are reachable through the
  // repositories' links; a segment no folder links to never held an acknowledged profile.
  for (const name of await readdir(spoolDir)) await unlink(join(spoolDir, name)).catch(() => undefined);
  return new FileSpool(resolve(stateDir), root, deps, new SpoolWriter(root, spoolDir, deps, options));
}

class FileSpool implements Spool {
  readonly stateDir: string;
  readonly root: string;
  readonly #deps: QueueDeps;
  readonly #writer: SpoolWriter;
  readonly #queues = new Map<string, DurableQueue>();
  #handles: ReadonlyMap<string, QueueHandle> = new Map();
  #closed = false;
  #warnedOrphans = false;

  constructor(stateDir: string, root: string, deps: QueueDeps, writer: SpoolWriter) {
    this.stateDir = stateDir;
    this.root = root;
    this.#deps = deps;
    this.#writer = writer;
  }

  get outboxes(): ReadonlyMap<string, QueueHandle> {
    return this.#handles;
  }

  queue(name: string): DurableQueue | undefined {
    return this.#queues.get(name);
  }

  async attach(repository: Repository, settings: QueueSettings): Promise<QueueHandle> {
    let queue = this.#queues.get(repository.name);
    if (!queue) {
      // the order a repository wants is fixed when its queue opens (a reload that turns a name into another kind keeps it until the next start)
      queue = new DurableQueue(repository.name, join(this.root, repository.name), this.#deps, repository.placeOf?.bind(repository));
      await queue.open();
      this.#queues.set(repository.name, queue);
      const q = queue;
      this.#deps.metrics.queueSources.set(repository.name, () => q.stats());
    }
    const name = repository.name;
    return new QueueHandle(queue, repository, settings, {
      enqueue: (profile) => this.#submit(profile, [name]),
      onClose: (handle) => handle.queue.detach(handle),
    });
  }

  activate(handles: ReadonlyMap<string, QueueHandle>): void {
    const routes: DurableQueue[] = [];
    for (const handle of handles.values()) {
      if (handle.queue.handle !== handle) handle.queue.use(handle);
      routes.push(handle.queue);
    }
    this.#writer.route(routes);
    this.#handles = handles;
    void this.#warnOrphans();
  }

  submit(profile: ScrapedProfile): Promise<void> {
    return this.#submit(profile, undefined);
  }

  #submit(profile: ScrapedProfile, to: readonly string[] | undefined): Promise<void> {
    if (this.#closed) {
      this.#deps.metrics.queueDropped.inc({ repository: to?.join(',') ?? '*', reason: 'closed' });
      return Promise.resolve();
    }
    return this.#writer.write(profile, to);
  }

  /** A queue folder no configured repository owns is named once: its profiles wait there. */
  async #warnOrphans(): Promise<void> {
    if (this.#warnedOrphans) return;
    this.#warnedOrphans = true;
    try {
      for (const name of await readdir(this.root)) {
        if (name === SPOOL_DIR || name === '.lock' || this.#queues.has(name)) continue;
        const files = await readdir(join(this.root, name)).catch(() => [] as string[]);
        const segments = files.filter((f) => f.endsWith('.seg')).length;
        if (segments > 0) {
          this.#deps.logger.warn({ dir: join(this.root, name), segments }, 'a queue folder belongs to no configured repository: its profiles wait there until a repository of that name is configured again (or delete the folder)');
        }
      }
    } catch {
      // only a hint
    }
  }

  async close(deadlineMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.stop();
    await Promise.all([...this.#handles.values()].map((h) => h.close(deadlineMs)));
    await this.#writer.sealOpen();
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    for (const name of this.#queues.keys()) this.#deps.metrics.queueSources.delete(name);
    await unlockStateDir(this.root);
  }
}
