// One rule for tests that need an optional system package (bubblewrap, nats-server, chromium, Mesa's
// EGL for WebGPU, python3-torch): where it is missing they are skipped with one line saying how to
// enable them; with CI=true (.ci/run installs every one) a missing package fails the test file instead,
// so CI never passes by skipping.

/** True when `missing` is null. Otherwise prints one line naming the tests and how to enable them and
 * returns false, or, with CI=true, throws. */
export function optionalPresent(tests: string, missing: string | null, enable: string): boolean {
  if (missing === null) return true;
  const line = `${tests} skipped: ${missing}; enable with ${enable}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${line}`);
  process.stderr.write(`\n  ${line}\n\n`);
  return false;
}
