import { writeSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { LineLimiter } from '../log-limiter.js';
import { syncDir } from './sync-dir.js';

/**
 * A queue folder's note of the item whose prepare() runs: `<segment> <offset>`,
 * blank when none does. Found at start naming an item, it means the previous
 * process died while preparing that item, perhaps because of it.
 */
export const PREPARING_FILE = 'preparing';
const PREPARING_BYTES = 64;
const BLANK_NOTE = Buffer.from(`${' '.repeat(PREPARING_BYTES - 1)}\n`, 'latin1');

/** An item of a segment. */
export interface ItemAt {
  readonly segment: string;
  readonly offset: number;
}

/** The item a `preparing` note names; undefined when it is blank or not a note. */
export function parsePreparing(text: string): ItemAt | undefined {
  const m = /^([0-9A-Za-z_-]+) ([0-9]{1,10})$/.exec(text.trim());
  return m ? { segment: m[1] as string, offset: Number(m[2]) } : undefined;
}

/**
 * The `preparing` note of one queue folder. The note is a plain write, which
 * the page cache keeps when the process dies; it is also synced for items
 * read back from disk, so that one that takes the whole machine down is
 * given up on after one reboot.
 */
export class PrepareNote {
  readonly #dir: string;
  readonly #name: string;
  readonly #logger: Logger;
  readonly #log: LineLimiter;
  /** The open `preparing` file, and whether it names an item now. */
  #file: FileHandle | undefined;
  #synced = false;
  #noted = false;
  #busy = false;

  constructor(dir: string, name: string, logger: Logger) {
    this.#dir = dir;
    this.#name = name;
    this.#logger = logger;
    this.#log = new LineLimiter((folded) => logger.warn({ repository: name, file: this.#path, folded }, `could not note which profile is being prepared, ${folded} more times since the last line`));
  }

  get #path(): string {
    return join(this.#dir, PREPARING_FILE);
  }

  /** The note a previous process left (undefined: no file). */
  async read(): Promise<{ item: ItemAt | undefined } | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path, 'latin1');
    } catch {
      return undefined;
    }
    const item = parsePreparing(text);
    if (!item && text.trim() !== '') {
      this.#logger.warn({ repository: this.#name, file: this.#path }, 'the note of the item being prepared is unreadable: ignored (an item that crashed the daemon while being prepared would be prepared once more)');
    }
    return { item };
  }

  /** Runs `f` with the note naming `item` (none: held in memory only, nothing to note), `durable` when the item was read back from disk. */
  async during<T>(item: ItemAt | undefined, durable: boolean, f: () => Promise<T>): Promise<T> {
    this.#busy = true;
    try {
      if (item) await this.#write(item, durable);
      return await f();
    } finally {
      await this.clear();
      this.#busy = false;
    }
  }

  async #write(item: ItemAt, durable: boolean): Promise<void> {
    const note = Buffer.from(BLANK_NOTE);
    note.write(`${item.segment} ${item.offset}`, 0, PREPARING_BYTES - 1, 'latin1');
    try {
      this.#file ??= await open(this.#path, 'w', 0o600);
      // 64 bytes into the page cache take microseconds; a trip through the thread pool costs more
      writeSync(this.#file.fd, note, 0, note.length, 0);
      this.#noted = true;
      if (durable) {
        await this.#file.datasync();
        if (!this.#synced) {
          await syncDir(this.#dir);
          this.#synced = true;
        }
      }
    } catch (err) {
      this.#log.emit((folded) =>
        this.#logger.warn(
          { repository: this.#name, file: this.#path, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message, ...(folded ? { also_failed: folded } : {}) },
          'could not note which profile is being prepared: should preparing it crash the daemon, the next start would prepare it again',
        ),
      );
    }
  }

  /** Blanks the note (a plain write: a note left by a machine crash costs at most the one item it names). */
  async clear(): Promise<void> {
    try {
      // opening it truncates it
      if (this.#file === undefined) this.#file = await open(this.#path, 'w', 0o600);
      else if (this.#noted) writeSync(this.#file.fd, BLANK_NOTE, 0, BLANK_NOTE.length, 0);
      this.#noted = false;
    } catch {
      // the next note overwrites it
    }
  }

  /** Closes the file, unless a prepare still runs now: it never returned, and its note stays. */
  async close(): Promise<void> {
    this.#log.flush();
    if (this.#busy) return;
    await this.#file?.close().catch(() => undefined);
    this.#file = undefined;
  }
}
