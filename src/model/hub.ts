// `hf:<org>/<name>[@revision]` model names, resolved offline in the standard Hugging Face cache
// (huggingface_hub's layout: <cache>/models--org--name/snapshots/<commit>/, refs/<branch or tag>
// holding a commit). r1kit downloads nothing: a model missing from the cache is an error that says
// how to fetch it.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

const PREFIX = 'hf:';
const NAME = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
const REVISION = /^[\w.-]+(\/[\w.-]+)*$/;

export function isHubName(spec: string): boolean {
  return spec.startsWith(PREFIX);
}

/** The hub cache folder, as huggingface_hub picks it: $HF_HUB_CACHE, $HF_HOME/hub,
 * $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface', 'hub');
}

/** The snapshot folder of an `hf:` name, or why there is none (with the command that fetches it). */
export function locateHubModel(spec: string, env: NodeJS.ProcessEnv = process.env): { dir: string } | { problem: string } {
  const body = spec.slice(PREFIX.length);
  const at = body.lastIndexOf('@');
  const name = at >= 0 ? body.slice(0, at) : body,
    revision = at >= 0 ? body.slice(at + 1) : 'main';
  if (!NAME.test(name) || name.includes('..') || !REVISION.test(revision) || revision.split('/').includes('..')) {
    return { problem: `'${spec}' is not a model name of the form hf:<org>/<name>[@revision]` };
  }
  const cache = hubCacheDir(env);
  const repo = join(cache, `models--${name.replace('/', '--')}`);
  const download = `huggingface-cli download ${name}${revision === 'main' ? '' : ` --revision ${revision}`}`;
  const missing = (what: string) => ({
    problem:
      `${spec}: ${what} in the Hugging Face cache ${cache}. r1kit downloads nothing: fetch it with \`${download}\` ` +
      '(or point HF_HOME / HF_HUB_CACHE at the cache that holds it)',
  });
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    const ref = join(repo, 'refs', revision);
    if (!existsSync(ref)) return missing(existsSync(repo) ? `revision '${revision}' is not` : 'the model is not');
    commit = readFileSync(ref, 'utf8').trim();
  }
  const dir = join(repo, 'snapshots', commit);
  if (!existsSync(join(dir, 'config.json'))) return missing(`snapshot ${commit} has no config.json`);
  return { dir };
}

/** A model directory from a path or an `hf:` name. */
export function resolveModelDir(spec: string): string {
  if (!isHubName(spec)) return spec;
  const found = locateHubModel(spec);
  if ('problem' in found) throw new UserError(found.problem);
  return found.dir;
}
