// Paths given on the command line, checked before any work: a missing folder or file is reported as
// missing (with the absolute path it was looked for at), a folder that lacks a file the command needs
// names that file. Each message starts with the flag, so the user knows which one to fix (exit 2).
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { isHubName, resolveModelDir } from '../model/hub.ts';

/** A model folder flag (`--model`): a hub name resolved to its local folder, or a folder that exists and
 * holds every file in `needs` (config.json by default). A LoRA adapter folder (PEFT's
 * adapter_config.json) stands in for config.json: its base holds that. Returns the folder. */
export function modelDirFlag(flag: string, value: string, needs: string[] = ['config.json']): string {
  const dir = resolveModelDir(value);
  if (!isHubName(value)) {
    const abs = resolve(dir);
    if (!existsSync(abs)) throw new UserError(`${flag} ${value}: no such folder (${abs})`);
    if (!statSync(abs).isDirectory()) throw new UserError(`${flag} ${value}: not a folder (${abs}); give the model's folder`);
  }
  const adapter = existsSync(join(dir, 'adapter_config.json'));
  const missing = needs.filter((f) => !existsSync(join(dir, f)) && !(adapter && f === 'config.json'));
  if (missing.length) throw new UserError(`${flag} ${value}: the folder has no ${missing.join(' or ')} (is it a model folder?)`);
  return dir;
}

/** An input file flag (`--dataset`, `--input`): a file that exists. Returns the path as given. */
export function inputFileFlag(flag: string, value: string): string {
  const abs = resolve(value);
  if (!existsSync(abs)) throw new UserError(`${flag} ${value}: no such file (${abs})`);
  if (statSync(abs).isDirectory()) throw new UserError(`${flag} ${value}: is a folder; give a file`);
  return value;
}
