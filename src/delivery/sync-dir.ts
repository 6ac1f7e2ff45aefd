import { open } from 'node:fs/promises';

/** Makes a folder's entries (a file created, linked or removed in it) durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
