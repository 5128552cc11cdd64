// Runs a command and writes the peak resident memory of its process tree, in MB, to a file: how
// scripts/gpu-check.sh reports the memory of a step (GPU threads included: they are threads of the
// same process; a software adapter's buffers are in that process's memory too).
//   node scripts/peak-rss.mjs OUT_FILE COMMAND [ARGS...]   (exits with the command's status)
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const [out, cmd, ...args] = process.argv.slice(2);
if (!out || !cmd) {
  console.error('usage: node scripts/peak-rss.mjs OUT_FILE COMMAND [ARGS...]');
  process.exit(2);
}

/** Resident memory of `root` and every process under it, in KB (ps, as on Linux and macOS). */
function treeRssKb(root) {
  let table;
  try {
    table = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,rss='], { encoding: 'utf8' });
  } catch {
    return 0;
  }
  const rows = table
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const inTree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of rows) {
      if (inTree.has(ppid) && !inTree.has(pid)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  return rows.filter(([pid]) => inTree.has(pid)).reduce((a, r) => a + (r[2] || 0), 0);
}

const child = spawn(cmd, args, { stdio: 'inherit' });
let peakKb = 0;
const timer = setInterval(() => (peakKb = Math.max(peakKb, treeRssKb(child.pid))), 500);
child.on('exit', (code, signal) => {
  clearInterval(timer);
  writeFileSync(out, `${Math.round(peakKb / 1024)}\n`);
  process.exit(code ?? (signal ? 1 : 0));
});
