// Writing a file so that no reader (a resumed run, the live report server, another process) ever
// sees half of it: the one atomic writer every room uses (checkpoints, tokenizers, manifests,
// metrics, report pages).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** Writes `path` via a temporary file beside it, synced, then a rename, so a crash never leaves a
 * half-written file. */
export function writeFileAtomic(path: string, chunks: (Uint8Array | string)[]): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) writeSync(fd, typeof c === 'string' ? Buffer.from(c) : c);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
