import type { Dispatcher } from 'undici';

/**
 * Reads a response body to its end, or stops once it passes `max` bytes:
 * then the rest is left unread, the body destroyed, and `over` says how
 * many bytes had come. For answers from peers that are not trusted to
 * keep their size (targets, discovery endpoints, repositories).
 */
export async function readBodyUpTo(body: Dispatcher.ResponseData['body'], max: number): Promise<{ bytes: Buffer } | { over: number }> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > max) {
      body.destroy();
      return { over: total };
    }
    chunks.push(buf);
  }
  return { bytes: chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, total) };
}
