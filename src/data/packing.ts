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
