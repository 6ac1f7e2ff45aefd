import { open, readdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Place, ProfileFields } from '../repositories/repository.js';
import { newSegment, readDone, segmentFile } from './ack-log.js';
import type { AckLog, QueueSegment } from './ack-log.js';
import type { Entry } from './backlog.js';
import type { ItemAt } from './prepare-note.js';
import type { Quarantine } from './quarantine.js';
import { scanSegment } from './record.js';

/** Queue positions of a backlog read from disk: before those of profiles queued in this run, which count from 0. */
const BACKLOG_SEQ = -(2 ** 52);

/** What reading a queue's backlog needs of the queue. */
export interface RecoverContext {
  readonly dir: string;
  readonly name: string;
  readonly logger: Logger;
  readonly acks: AckLog;
  readonly quarantine: Quarantine;
  /** The repository's order stage, when it has one. */
  readonly placeOf: ((profile: ProfileFields) => Place) | undefined;
}

export interface Recovered {
  readonly entries: Entry[];
  /** Damaged stretches and unreadable segments, moved to quarantine. */
  readonly damaged: number;
  /** The interrupted item was found and given up on. */
  readonly gaveUp: boolean;
}

/** The segments in a queue's folder, oldest first; `.done` files of segments that are gone are removed. */
export async function listSegments(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  const ids = names.filter((n) => n.endsWith('.seg')).map((n) => n.slice(0, -4)).sort();
  const known = new Set(ids);
  for (const n of names) {
    if (n.endsWith('.done') && !known.has(n.slice(0, -5))) await unlink(join(dir, n)).catch(() => undefined);
  }
  return ids;
}

/**
 * Reads the items of `ids` not yet finished. A damaged stretch or segment
 * goes to quarantine, and so does `interrupted`, the item a previous process
 * died preparing; an incomplete record at a segment's end was never
 * acknowledged and is ignored.
 */
export async function readBacklog(ctx: RecoverContext, ids: readonly string[], interrupted: ItemAt | undefined): Promise<Recovered> {
  const entries: Entry[] = [];
  let damaged = 0;
  let gaveUp = false;
  for (const id of ids) {
    const seg = newSegment(id, true);
    const done = await readDone(ctx.dir, id);
    let fh: FileHandle | undefined;
    const before = entries.length;
    try {
      fh = await open(join(ctx.dir, segmentFile(id)), 'r');
      const file = fh;
      const { size } = await file.stat();
      await scanSegment(file, size, async (e) => {
        if (e.kind === 'damage') {
          if (e.tail) {
            ctx.logger.info({ repository: ctx.name, segment: id, offset: e.offset, bytes: e.length }, 'ignoring an incomplete record at the end of a segment (the daemon stopped while writing it; it was never acknowledged)');
            return;
          }
          damaged++;
          await ctx.quarantine.bytes(file, id, e.offset, e.length, e.reason);
          return;
        }
        if (done.has(e.offset)) return;
        if (e.meta.to && !e.meta.to.includes(ctx.name)) {
          seg.acks.push(e.offset);
          return;
        }
        if (interrupted?.segment === id && interrupted.offset === e.offset) {
          await ctx.quarantine.interrupted(file, id, e.offset, e.length);
          seg.acks.push(e.offset);
          gaveUp = true;
          return;
        }
        seg.pending++;
        entries.push({ seg, offset: e.offset, length: e.length, at: e.meta.enqueuedAt, profile: undefined, prepared: undefined, state: 'pending', place: ctx.placeOf?.(e.meta), seq: BACKLOG_SEQ + entries.length });
      });
    } catch (err) {
      damaged++;
      entries.length = before;
      await fh?.close().catch(() => undefined);
      await ctx.quarantine.segment(id, err);
      continue;
    }
    await fh.close().catch(() => undefined);
    await keepOrRemove(ctx.acks, seg);
  }
  return { entries, damaged, gaveUp };
}

async function keepOrRemove(acks: AckLog, seg: QueueSegment): Promise<void> {
  if (seg.pending === 0) await acks.removeNow(seg);
  else acks.keep(seg);
}
