import { createHash, timingSafeEqual } from 'node:crypto';
import type * as Bcryptjs from 'bcryptjs';
import type { Secret } from '../config/secret.js';

// bcrypt is slow by design (tens of ms a check at cost 10), so, as Prometheus
// does, credentials that passed once are remembered by a hash of them, and
// checks run one at a time: a flood of wrong passwords costs one core at
// most and is refused past a short queue instead of piling up.

const REMEMBERED_MAX = 256;
const WAITING_MAX = 16;

export type AuthOutcome = 'ok' | 'missing' | 'wrong' | 'busy';

let bcrypt: Promise<typeof Bcryptjs> | undefined;

export class BasicAuthCheck {
  readonly #username: Buffer;
  readonly #hash: Secret;
  readonly #remembered = new Set<string>();
  #chain: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  constructor(username: string, passwordHash: Secret) {
    this.#username = digest(username);
    this.#hash = passwordHash;
    // loaded only when basic_auth is configured
    bcrypt ??= import('bcryptjs');
  }

  /** Checks an Authorization header against the configured user and bcrypt hash. */
  async check(authorization: string | undefined): Promise<AuthOutcome> {
    const m = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
    if (!m) return 'missing';
    const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'wrong';
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const key = createHash('sha256').update(user).update('\0').update(password).update('\0').update(this.#hash.reveal()).digest('hex');
    if (this.#remembered.has(key)) return 'ok';
    if (this.#waiting >= WAITING_MAX) return 'busy';
    this.#waiting++;
    const run = this.#chain.then(async () => {
      // the hash is checked even for a wrong user name, so the time taken does not tell which was wrong
      const passwordOk = await (await (bcrypt ??= import('bcryptjs'))).compare(password, this.#hash.reveal());
      return timingSafeEqual(digest(user), this.#username) && passwordOk;
    });
    this.#chain = run.catch(() => undefined);
    try {
      if (!(await run)) return 'wrong';
    } finally {
      this.#waiting--;
    }
    if (this.#remembered.size >= REMEMBERED_MAX) this.#remembered.clear();
    this.#remembered.add(key);
    return 'ok';
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
