// A small side channel from a reward to the run's metrics: besides one value per completion, a reward
// may count things that happened while scoring a batch (a comparison stopped by its time budget, a
// reference answer that does not parse), with one example of each. scoreBatch (registry.ts) reads
// them after the reward returns, adds the counts to ScoreResult.counts and says them in its warnings.
import type { RewardBatch, RewardFn } from './types.ts';

export type RewardNotes = Record<string, { count: number; example: string }>;

/** A reward function that may say what it counted while scoring `batch` (once: the notes are taken). */
export type NotingRewardFn = RewardFn & { notes?: (batch: RewardBatch) => RewardNotes | undefined };

/** Collects notes per batch object, so batches scored concurrently keep their own. */
export class NoteBook {
  private readonly byBatch = new WeakMap<RewardBatch, RewardNotes>();

  add(batch: RewardBatch, key: string, example: string): void {
    let notes = this.byBatch.get(batch);
    if (!notes) this.byBatch.set(batch, (notes = {}));
    const n = (notes[key] ??= { count: 0, example: example.length > 80 ? example.slice(0, 80) + '...' : example });
    n.count++;
  }

  take(batch: RewardBatch): RewardNotes | undefined {
    const notes = this.byBatch.get(batch);
    this.byBatch.delete(batch);
    return notes;
  }
}
