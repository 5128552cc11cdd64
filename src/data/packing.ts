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

/** Text rows packed as packSequences packs them: each row's `field` encoded, then cut into rows of
 * `length` tokens. `notText(i)` is the error for row i (0-based) when its field is not a string. */
export function packText(
  rows: readonly Record<string, unknown>[],
  field: string,
  tok: { encode(text: string): number[]; eosId: number },
  length: number,
  notText: (i: number) => Error,
): number[][] {
  const docs = rows.map((row, i) => {
    const text = row[field];
    if (typeof text !== 'string') throw notText(i);
    return tok.encode(text);
  });
  return packSequences(docs, length, tok.eosId);
}
