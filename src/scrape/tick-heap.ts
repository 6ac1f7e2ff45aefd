/** What the heap orders: its next tick, and where in the heap it is (-1 when not in it). */
export interface HeapEntry {
  nextAt: number;
  heapIndex: number;
}

/** A binary min-heap on `nextAt`, each entry knowing its index, so that one moved or removed is fixed in place. */
export class TickHeap<T extends HeapEntry> {
  readonly #heap: T[] = [];

  /** The entry due first. */
  get first(): T | undefined {
    return this.#heap[0];
  }

  push(entry: T): void {
    entry.heapIndex = this.#heap.length;
    this.#heap.push(entry);
    this.#up(entry.heapIndex);
  }

  remove(entry: T): void {
    const i = entry.heapIndex;
    if (i < 0) return;
    const last = this.#heap.pop();
    entry.heapIndex = -1;
    if (!last || last === entry) return;
    this.#heap[i] = last;
    last.heapIndex = i;
    this.#down(i);
    this.#up(i);
  }

  /** Puts an entry whose `nextAt` changed back in its place. */
  fix(entry: T): void {
    if (entry.heapIndex < 0) return;
    this.#down(entry.heapIndex);
    this.#up(entry.heapIndex);
  }

  #up(i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const a = heap[i] as T;
      const b = heap[parent] as T;
      if (b.nextAt <= a.nextAt) break;
      heap[i] = b;
      heap[parent] = a;
      b.heapIndex = i;
      a.heapIndex = parent;
      i = parent;
    }
  }

  #down(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && (heap[l] as T).nextAt < (heap[smallest] as T).nextAt) smallest = l;
      if (r < heap.length && (heap[r] as T).nextAt < (heap[smallest] as T).nextAt) smallest = r;
      if (smallest === i) return;
      const a = heap[i] as T;
      const b = heap[smallest] as T;
      heap[i] = b;
      heap[smallest] = a;
      b.heapIndex = i;
      a.heapIndex = smallest;
      i = smallest;
    }
  }
}
