// The job loop of a sandbox process: jobs in on standard input (one JSON line each, from the pool,
// which is trusted), messages out on file descriptor 3, synchronously, so the pool sees each run the
// moment it ends even while Python runs without returning to the event loop.
import { writeSync } from 'node:fs';
import type { LanguageRunner } from '../languages.ts';
import type { Job, Message } from '../protocol.ts';

const MESSAGES = 3;

export function send(m: Message): void {
  const bytes = Buffer.from(JSON.stringify(m) + '\n');
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(MESSAGES, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

export function serve(runner: Pick<LanguageRunner, 'runProgram' | 'taint'>): void {
  const queue: Job[] = [];
  let buffered = '',
    busy = false;
  const next = async () => {
    if (busy) return;
    busy = true;
    for (let job = queue.shift(); job; job = queue.shift()) {
      const id = job.id;
      await runner.runProgram(job, (i, run) => send({ t: 'run', id, i, run }));
      const why = runner.taint();
      if (why !== null) {
        send({ t: 'retire', why });
        process.exit(0);
      }
    }
    busy = false;
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      queue.push(JSON.parse(buffered.slice(0, nl)) as Job);
      buffered = buffered.slice(nl + 1);
    }
    void next();
  });
  // The pool closing our input means it is done with us.
  process.stdin.on('end', () => process.exit(0));
  send({ t: 'ready' });
}
