import { open, readFile, truncate, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readRecord } from './record.js';

/** This queue's view of one spool segment: a hard link in its folder, and the offsets it has finished. */
export interface QueueSegment {
  readonly id: string;
  pending: number;
  sealed: boolean;
  removed: boolean;
  acks: number[];
  doneFile: FileHandle | undefined;
  reader: Promise<FileHandle> | undefined;
}

export const segmentFile = (id: string): string => `${id}.seg`;
export const doneFile = (id: string): string => `${id}.done`;

/** A segment this queue has just heard of, or found at start. */
export function newSegment(id: string, sealed: boolean): QueueSegment {
  return { id, pending: 0, sealed, removed: false, acks: [], doneFile: undefined, reader: undefined };
}

/** The offsets a queue finished in segment `id`, from its `.done` file (none yet: empty). */
export async function readDone(dir: string, id: string): Promise<Set<number>> {
  const done = new Set<number>();
  try {
    const raw = await readFile(join(dir, doneFile(id)));
    for (let i = 0; i + 4 <= raw.length; i += 4) done.add(raw.readUInt32LE(i));
    // a write cut short: later notes must start on a 4-byte boundary
    if (raw.length % 4 !== 0) await truncate(join(dir, doneFile(id)), raw.length - (raw.length % 4));
  } catch {
    // no offsets finished yet
  }
  return done;
}

/**
 * A queue's segments and its ack log: the offsets it has finished, appended
 * to each segment's `.done` file in groups. A segment's link and `.done`
 * file go once it is sealed and its last item is finished.
 */
export class AckLog {
  readonly #dir: string;
  readonly #name: string;
  readonly #logger: Logger;
  readonly #flushMs: number;
  readonly #segments = new Map<string, QueueSegment>();
  readonly #removals = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(dir: string, name: string, logger: Logger, flushMs: number) {
    this.#dir = dir;
    this.#name = name;
    this.#logger = logger;
    this.#flushMs = flushMs;
  }

  get(id: string): QueueSegment | undefined {
    return this.#segments.get(id);
  }

  /** A segment read at start that still has items to send. */
  keep(seg: QueueSegment): void {
    this.#segments.set(seg.id, seg);
    if (seg.acks.length > 0) this.scheduleFlush();
  }

  /** A new spool segment now linked into this queue's folder. */
  add(id: string): void {
    if (this.#segments.has(id)) return;
    this.#segments.set(id, newSegment(id, false));
  }

  /** The spool appends no more to this segment: once its items are done, its link can go. */
  seal(id: string): void {
    const seg = this.#segments.get(id);
    if (!seg) return;
    seg.sealed = true;
    if (seg.pending === 0) this.#remove(seg);
  }

  /** An item of `seg` at `offset` is finished. */
  finished(seg: QueueSegment, offset: number): void {
    if (seg.removed) return;
    seg.pending--;
    seg.acks.push(offset);
    if (seg.pending === 0 && seg.sealed) this.#remove(seg);
    else this.scheduleFlush();
  }

  /** The bytes of the record at `offset` of `seg`. */
  async read(seg: QueueSegment, offset: number, length: number): Promise<Buffer> {
    seg.reader ??= open(join(this.#dir, segmentFile(seg.id)), 'r');
    return readRecord(await seg.reader, offset, length);
  }

  scheduleFlush(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#flushMs);
    this.#timer.unref();
  }

  /** Appends finished offsets to each segment's `.done` file. Losing the last few to a crash only means sending those again. */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      for (const seg of this.#segments.values()) {
        if (seg.acks.length === 0 || seg.removed) continue;
        const buf = Buffer.allocUnsafe(seg.acks.length * 4);
        seg.acks.forEach((o, i) => buf.writeUInt32LE(o, i * 4));
        seg.acks = [];
        try {
          seg.doneFile ??= await open(join(this.#dir, doneFile(seg.id)), 'a');
          if (seg.removed) continue;
          await seg.doneFile.write(buf);
          await seg.doneFile.datasync();
        } catch (err) {
          this.#logger.warn({ repository: this.#name, segment: seg.id, error: (err as Error).message }, 'could not note finished profiles; after a restart they are sent again');
        }
      }
    });
    return this.#writing;
  }

  #remove(seg: QueueSegment): void {
    const p = this.removeNow(seg).finally(() => this.#removals.delete(p));
    this.#removals.add(p);
  }

  /** Unlinks a segment this queue is done with, and its `.done` file. */
  async removeNow(seg: QueueSegment): Promise<void> {
    if (seg.removed) return;
    seg.removed = true;
    this.#segments.delete(seg.id);
    seg.acks = [];
    await this.#writing.catch(() => undefined);
    await seg.doneFile?.close().catch(() => undefined);
    seg.doneFile = undefined;
    await closeReader(seg);
    await unlink(join(this.#dir, segmentFile(seg.id))).catch(() => undefined);
    await unlink(join(this.#dir, doneFile(seg.id))).catch(() => undefined);
  }

  /** No timed flush from now on; close() writes what is left. */
  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Waits for removals, writes down what is finished, closes files. */
  async close(): Promise<void> {
    await Promise.all([...this.#removals]);
    await this.flush();
  }

  /** Closes the files of the segments still held (after close()). */
  async closeFiles(): Promise<void> {
    for (const seg of this.#segments.values()) {
      await seg.doneFile?.close().catch(() => undefined);
      seg.doneFile = undefined;
      await closeReader(seg);
    }
  }
}

async function closeReader(seg: QueueSegment): Promise<void> {
  const reader = seg.reader;
  seg.reader = undefined;
  if (reader) await reader.then((fh) => fh.close()).catch(() => undefined);
}
