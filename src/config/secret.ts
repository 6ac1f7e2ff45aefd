import { inspect } from 'node:util';

const REDACTED = '<secret>';

/**
 * A password or token. It prints as `<secret>` everywhere (JSON, logs,
 * util.inspect, string templates); only `reveal()` gives the value, and only
 * the code that puts it on the wire calls it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
