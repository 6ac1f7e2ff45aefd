import type { ScrapedProfile } from '../profiles/profile.js';
import type { Prepared, Repository } from '../repositories/repository.js';
import type { Entry } from './backlog.js';
import type { PrepareNote } from './prepare-note.js';
import type { Quarantine } from './quarantine.js';

/** What the transform stage needs of its queue. */
export interface TransformContext {
  readonly note: PrepareNote;
  readonly quarantine: Quarantine;
  /** The profile of an item not held in memory, read back from its segment; throws when it cannot be. */
  read(entry: Entry): Promise<ScrapedProfile>;
  /** An item that could not be read back: counted, logged and finished. */
  damaged(entry: Entry, err: unknown): void;
  finish(entry: Entry): void;
}

/**
 * Runs the repository's transform stage (`Repository.prepare`) for a queue:
 * profiles are read back and prepared one at a time, in queue order, each
 * once, its result kept for its retries. prepare() runs under a note in the
 * `preparing` file, so that a process dying in it (out of memory on a
 * hostile profile, kill -9) does not prepare the same item at every start:
 * the next start quarantines it instead. A failure is final: the item goes
 * to quarantine and the queue goes on.
 */
export class TransformStage {
  readonly #ctx: TransformContext;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(ctx: TransformContext) {
    this.#ctx = ctx;
  }

  /** The profile to send (read back if not in memory, prepared once); undefined when the item was dropped. */
  load(entry: Entry, repository: Repository): Promise<Prepared | undefined> {
    const loaded = this.#chain.then(() => this.#load(entry, repository));
    this.#chain = loaded.catch(() => undefined);
    return loaded;
  }

  async #load(entry: Entry, repository: Repository): Promise<Prepared | undefined> {
    if (entry.state !== 'sending') return undefined;
    let profile = entry.profile;
    if (!profile) {
      try {
        profile = await this.#ctx.read(entry);
      } catch (err) {
        this.#ctx.damaged(entry, err);
        return undefined;
      }
    }
    const prepare = repository.prepare?.bind(repository);
    if (!prepare) return { status: 'send', profile };
    const kind = repository.kind;
    if (entry.prepared?.kind === kind) return entry.prepared.value;
    const value = await this.#prepare(entry, profile, prepare, entry.profile === undefined);
    if (value === undefined) return undefined;
    entry.prepared = { kind, value };
    return value;
  }

  /** prepare() under the note; the note is synced for an item read back from disk. */
  #prepare(entry: Entry, profile: ScrapedProfile, prepare: (p: ScrapedProfile) => Promise<Prepared>, readBack: boolean): Promise<Prepared | undefined> {
    const item = entry.seg ? { segment: entry.seg.id, offset: entry.offset } : undefined;
    return this.#ctx.note.during(item, readBack, async () => {
      try {
        return await prepare(profile);
      } catch (err) {
        if (entry.state === 'sending') {
          await this.#ctx.quarantine.unprepared({ segment: entry.seg?.id, offset: entry.offset, at: entry.at }, profile, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
          this.#ctx.finish(entry);
        }
        return undefined;
      }
    });
  }
}
