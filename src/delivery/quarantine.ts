import { mkdir, open, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { LineLimiter } from '../log-limiter.js';
import { fileExtensionOf } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { doneFile, segmentFile } from './ack-log.js';
import { decodeProfile, readRecord } from './record.js';

/** Where a quarantined item went, or why no copy was kept: fields of its log line. */
type Kept = { readonly moved_to: string } | { readonly not_kept: string };

/** An item given up on while in memory or in a segment. */
export interface LostItem {
  readonly segment: string | undefined;
  readonly offset: number;
  /** When it was queued: names a memory-only item's files. */
  readonly at: number;
}

const COPY_PIECE = 1024 * 1024;
const INTERRUPTED = 'the daemon stopped while preparing this item (possibly a crash caused by it); moved to quarantine so the queue can go on';

export function whoOf(profile: ScrapedProfile | undefined): { service?: string; type?: string; instance?: string | undefined } {
  return profile ? { service: profile.service, type: profile.type, instance: profile.labels['instance'] } : {};
}

/**
 * A queue's `quarantine/` folder: items given up on (damaged, or failed to
 * prepare) are moved or copied there, each counted and logged, within a
 * bound of bytes past which no more copies are kept.
 */
export class Quarantine {
  readonly #queueDir: string;
  readonly #dir: string;
  readonly #name: string;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #maxBytes: number;
  readonly #prepareLog: LineLimiter;
  /** Bytes in the folder, against maxBytes. */
  #bytes = 0;
  #memoryItems = 0;

  constructor(queueDir: string, name: string, deps: { logger: Logger; metrics: Metrics }, maxBytes: number) {
    this.#queueDir = queueDir;
    this.#dir = join(queueDir, 'quarantine');
    this.#name = name;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#maxBytes = maxBytes;
    this.#prepareLog = new LineLimiter((folded) => deps.logger.error({ repository: name, folded }, `the repository could not prepare ${folded} more queued profiles since the last line: moved to quarantine`));
  }

  /** Creates the folder and counts what it holds. */
  async open(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    for (const n of await readdir(this.#dir)) this.#bytes += await stat(join(this.#dir, n)).then((s) => s.size, () => 0);
  }

  #count(reason: 'damaged' | 'interrupted' | 'prepare'): void {
    this.#metrics.queueDropped.inc({ repository: this.#name, reason });
    this.#metrics.queueQuarantined.inc({ repository: this.#name, reason });
  }

  /** At start: a segment that cannot be read at all goes whole, with its `.done` file gone. */
  async segment(id: string, err: unknown): Promise<void> {
    const path = join(this.#queueDir, segmentFile(id));
    const dest = join(this.#dir, segmentFile(id));
    this.#bytes += await stat(path).then((s) => s.size, () => 0);
    await rename(path, dest).catch(() => undefined);
    await unlink(join(this.#queueDir, doneFile(id))).catch(() => undefined);
    this.#count('damaged');
    this.#logger.error({ repository: this.#name, segment: path, moved_to: dest, error: (err as Error).message }, 'queue segment is unreadable: moved to quarantine; the profiles in it are not sent');
  }

  /** At start: a damaged stretch of a segment; the items around it are kept. */
  async bytes(fh: FileHandle, id: string, offset: number, length: number, reason: string): Promise<void> {
    const kept = await this.#keep(join(this.#dir, `${id}-${offset}.damaged`), length, async (out) => {
      // in pieces: a damaged stretch can be as long as the segment
      const piece = Buffer.allocUnsafe(Math.min(length, COPY_PIECE));
      for (let done = 0; done < length; ) {
        const { bytesRead } = await fh.read(piece, 0, Math.min(piece.length, length - done), offset + done);
        if (bytesRead <= 0) break;
        await out.write(piece, 0, bytesRead);
        done += bytesRead;
      }
    });
    this.#count('damaged');
    this.#logger.error({ repository: this.#name, segment: join(this.#queueDir, segmentFile(id)), offset, bytes: length, reason, ...kept }, 'damaged queue item: its bytes are moved to quarantine; the items around it are kept');
  }

  /** At start: the item a previous process was preparing when it died. */
  async interrupted(fh: FileHandle, id: string, offset: number, length: number): Promise<void> {
    let profile: ScrapedProfile | undefined;
    try {
      profile = decodeProfile(await readRecord(fh, offset, length)).profile;
    } catch {
      // the scan just read it whole; should it fail now, the log line still says what was lost
    }
    const kept = await this.#keepItem(`${id}-${offset}`, profile, { reason: 'interrupted', error: INTERRUPTED, segment: id, offset });
    this.#count('interrupted');
    this.#logger.error(
      { repository: this.#name, segment: join(this.#queueDir, segmentFile(id)), offset, ...whoOf(profile), ...kept },
      'the daemon stopped while preparing this queued profile (possibly a crash caused by it): moved to quarantine so the queue can go on',
    );
  }

  /** A profile the repository could not prepare: it will not prepare it later either. */
  async unprepared(item: LostItem, profile: ScrapedProfile, error: string): Promise<void> {
    const segment = item.segment;
    const base = segment === undefined ? `memory-${item.at}-${this.#memoryItems++}` : `${segment}-${item.offset}`;
    const kept = await this.#keepItem(base, profile, { reason: 'prepare', error, segment, offset: item.offset });
    this.#count('prepare');
    this.#prepareLog.emit((folded) =>
      this.#logger.error(
        { repository: this.#name, segment: segment === undefined ? undefined : join(this.#queueDir, segmentFile(segment)), offset: item.offset, ...whoOf(profile), error, ...kept, ...(folded ? { also_quarantined: folded } : {}) },
        'the repository could not prepare a queued profile: moved to quarantine; the profiles behind it go on',
      ),
    );
  }

  /** Logs what the limiter folded since its last line, before the process may exit. */
  flush(): void {
    this.#prepareLog.flush();
  }

  /** `<base>.pb.gz` (the profile as scraped; a trace: `.trace`) and `<base>.json` (what it is, and why it is here). */
  async #keepItem(base: string, profile: ScrapedProfile | undefined, why: { reason: string; error: string; segment: string | undefined; offset: number }): Promise<Kept> {
    const dir = this.#dir;
    const { data, ...meta } = profile ?? { data: undefined };
    const ext = profile ? fileExtensionOf(profile) : '.pb.gz';
    const json = Buffer.from(`${JSON.stringify({ repository: this.#name, ...why, quarantined_at: new Date().toISOString(), profile: profile ? meta : undefined }, null, 2)}\n`);
    const kept = await this.#keep(join(dir, `${base}.json`), json.length + (data?.length ?? 0), async (out) => {
      await out.write(json);
      if (data) await writeFile(join(dir, `${base}${ext}`), data, { mode: 0o600 });
    });
    return 'moved_to' in kept && data ? { moved_to: join(dir, `${base}${ext}`) } : kept;
  }

  /** Writes a quarantine file unless the folder is at its bound. */
  async #keep(dest: string, bytes: number, write: (out: FileHandle) => Promise<void>): Promise<Kept> {
    const max = this.#maxBytes;
    if (this.#bytes + bytes > max) {
      return { not_kept: `quarantine/ holds ${this.#bytes} bytes and this would take it past its bound of ${max}: no copy kept (empty ${dirname(dest)} to keep copies again)` };
    }
    this.#bytes += bytes;
    let out: FileHandle | undefined;
    try {
      out = await open(dest, 'w', 0o600);
      await write(out);
      return { moved_to: dest };
    } catch (err) {
      this.#bytes -= bytes;
      return { not_kept: `could not write ${dest}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    } finally {
      await out?.close().catch(() => undefined);
    }
  }
}
