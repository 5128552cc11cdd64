import { Rng } from '../engine/rng.ts';

/** Concatenates documents, each followed by the end-of-text token, into one stream and cuts it into
 * rows of exactly `length` tokens (the tail that does not fill a row is dropped). */
export function packSequences(docs: readonly number[][], length: number, eosId: number): number[][] {
  if (!Number.isInteger(length) || length < 1) throw new Error(`sequence length must be a positive integer (got ${length})`);
  const rows: number[][] = [];
  let cur: number[] = [];
  for (const doc of docs) {
    for (const id of [...doc, eosId]) {
      cur.push(id);
      if (cur.length === length) {
        rows.push(cur);
        cur = [];
      }
    }
  }
  return rows;
}

/** Where a reader stands: the epoch, and how many rows of that epoch's order it has served. */
export type PackPosition = { epoch: number; index: number };

/** Serves rows in a seeded shuffled order, epoch after epoch. The order of an epoch depends only on
 * (seed, epoch), so the position is all a checkpoint needs to resume mid-epoch with the same rows. */
export class RowReader<T> {
  private order: number[] = [];
  private orderEpoch = -1;

  constructor(
    readonly rows: readonly T[],
    readonly seed: number,
    private pos: PackPosition = { epoch: 0, index: 0 },
  ) {
    if (rows.length === 0) throw new Error('no rows to read');
  }

  get position(): PackPosition {
    return { ...this.pos };
  }

  /** The next `n` rows, crossing into the next epoch when this one runs out. */
  next(n: number): T[] {
    const out: T[] = [];
    while (out.length < n) {
      if (this.pos.index >= this.rows.length) this.pos = { epoch: this.pos.epoch + 1, index: 0 };
      out.push(this.rows[this.epochOrder()[this.pos.index]]);
      this.pos = { ...this.pos, index: this.pos.index + 1 };
    }
    return out;
  }

  private epochOrder(): number[] {
    if (this.orderEpoch !== this.pos.epoch) {
      const rng = new Rng((this.seed ^ Math.imul(this.pos.epoch + 1, 0x9e3779b9)) >>> 0);
      this.order = rng.shuffle(Array.from({ length: this.rows.length }, (_, i) => i));
      this.orderEpoch = this.pos.epoch;
    }
    return this.order;
  }
}
