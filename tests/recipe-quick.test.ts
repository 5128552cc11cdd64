// The quick: profile (r1 run --quick) and field paths that name a stage instead of its index.
import { join } from 'node:path';
import { recipeError } from './fixtures/recipes/errors.ts';
import { describe, expect, it, vi } from 'vitest';
import {
  modelSource,
  parseRecipe,
  runDir,
  stageHash,
  type EvalStage,
  type GrpoStage,
  type LoadOptions,
  type PretrainStage,
  type Recipe,
} from '../src/recipe/index.ts';

// `r1 run` hands the loaded recipe to runRecipe; capture it instead of training.
const ran: Recipe[] = [];
vi.mock('../src/pipeline/run.ts', () => ({
  runRecipe: async (recipe: Recipe) => {
    ran.push(recipe);
    return { runDir: '/nowhere', manifest: {} };
  },
}));

const DIR = join(import.meta.dirname, 'fixtures', 'recipes');
const FILE = join(DIR, 'inline.yaml'); // parseRecipe only needs its directory to exist

// Line numbers matter: the quick: entries are on lines 12-14.
const BASE = `name: t
tokenizer:
  train: { datasets: [data/corpus.jsonl] }
stages:
  - type: pretrain
    datasets: [data/corpus.jsonl]
    max_steps: 1200
  - { name: reasoning, type: grpo, datasets: [data/tasks.jsonl], num_generations: 4, per_device_train_batch_size: 16,
      rewards: [{ name: accuracy }, { name: format, weight: 0.5 }] }
  - { type: eval, datasets: [data/tasks.jsonl] }
quick:
  stages.pretrain.max_steps: 30
  stages.1.max_steps: 5
  stages.eval.max_samples: 8
`;

const load = (text: string, opts: LoadOptions = {}) => parseRecipe(text, FILE, opts);
const pretrain = (r: Recipe) => r.stages[0] as PretrainStage;
const grpo = (r: Recipe) => r.stages[1] as GrpoStage;

const errorOf = (text: string, opts: LoadOptions = {}): string => recipeError(text, FILE, opts);

describe('quick: profile', () => {
  it('is ignored without --quick, and applied with it', () => {
    const full = load(BASE);
    expect(full.name).toBe('t');
    expect([pretrain(full).max_steps, grpo(full).max_steps, full.stages[2].max_samples]).toEqual([1200, 100, null]);

    const quick = load(BASE, { quick: true });
    expect([pretrain(quick).max_steps, grpo(quick).max_steps, quick.stages[2].max_samples]).toEqual([30, 5, 8]);
    // Everything else is the full recipe's.
    expect(grpo(quick).num_generations).toBe(4);
    expect(quick.seed).toBe(full.seed);
  });

  it('runs in its own folder, <name>-quick, so it never resumes from or clobbers the full run', () => {
    const full = load(BASE);
    const quick = load(BASE, { quick: true });
    expect(quick.name).toBe('t-quick');
    expect(runDir(quick)).toBe(join(DIR, 'runs', 't-quick'));
    expect(runDir(quick)).not.toBe(runDir(full));
    // The name from the file name gets the suffix too, and so does one given with --set.
    const unnamed = BASE.replace('name: t\n', '');
    expect(load(unnamed, { quick: true }).name).toBe('inline-quick');
    expect(load(BASE, { quick: true, set: ['name=other'] }).name).toBe('other-quick');
  });

  it('--set is applied after quick, so it wins', () => {
    const r = load(BASE, { quick: true, set: ['stages.0.max_steps=7', 'stages.reasoning.max_steps=9'] });
    expect(pretrain(r).max_steps).toBe(7);
    expect(grpo(r).max_steps).toBe(9);
    expect(r.stages[2].max_samples).toBe(8);
  });

  it('does not change the full run: a quick: section leaves every stage hash as it was', () => {
    const without = load(BASE.slice(0, BASE.indexOf('quick:')));
    const withQuick = load(BASE);
    expect(withQuick.stages.map((_, i) => stageHash(withQuick, i))).toEqual(without.stages.map((_, i) => stageHash(without, i)));
    const quick = load(BASE, { quick: true });
    expect(stageHash(quick, 0)).not.toBe(stageHash(withQuick, 0));
  });

  it('takes any YAML value, not just scalars', () => {
    const r = load(BASE.replace('  stages.eval.max_samples: 8\n', '  stages.reasoning.rewards: [{ name: format }]\n'), { quick: true });
    expect(grpo(r).rewards.map((x) => x.name)).toEqual(['format']);
  });

  it('--quick without a quick: section is a clear error', () => {
    const plain = BASE.slice(0, BASE.indexOf('quick:'));
    expect(errorOf(plain, { quick: true })).toMatch(/inline\.yaml: --quick: this recipe has no quick: section/);
    expect(errorOf(`${plain}quick: {}\n`, { quick: true })).toMatch(/has no quick: section/);
    expect(load(`${plain}quick: {}\n`).name).toBe('t');
  });

  it('is validated on every load: a bad path or value names the file, the line of the entry and the path', () => {
    const bad = (entry: string) => BASE.replace('  stages.1.max_steps: 5\n', `  ${entry}\n`);
    // Without --quick too: a quick: section that rotted is found before someone needs it.
    for (const quick of [false, true]) {
      expect(errorOf(bad('stages.7.max_steps: 5'), { quick })).toMatch(
        /inline\.yaml:13:3: quick stages\.7\.max_steps: stages is a list of 3 entries; '7' is not an index 0\.\.2/,
      );
      expect(errorOf(bad('stages.0.max_stepz: 5'), { quick })).toMatch(
        /inline\.yaml:13:3: quick stages\.0\.max_stepz: stages\.0\.max_stepz: unknown key 'max_stepz' \(did you mean 'max_steps'\?\)/,
      );
      expect(errorOf(bad('stages.grpo.max_steps: 5'), { quick })).toMatch(
        /inline\.yaml:13:3: quick stages\.grpo\.max_steps: stages is a list of 3 entries; 'grpo' is neither an index 0\.\.2 nor the name of an entry \(names: pretrain, reasoning, eval\)/,
      );
      expect(errorOf(bad('stages.reasoning.max_steps: 0'), { quick })).toMatch(
        /inline\.yaml:13:3: quick stages\.reasoning\.max_steps: stages\.1\.max_steps: must be > 0, got 0/,
      );
      expect(errorOf(bad('name.x: 1'), { quick })).toMatch(/inline\.yaml:13:3: quick name\.x: name is a value, not a mapping or list/);
    }
    expect(errorOf(bad('stages.7.max_steps: 5'))).toMatch(
      /inline\.yaml: the recipe with its quick: overrides applied \(what --quick runs\) is invalid:\n/,
    );
    // A cross-field problem the entry causes is reported too.
    expect(errorOf(bad('stages.reasoning.num_generations: 3'))).toMatch(
      /per_device_train_batch_size: 16 completions per step is not divisible by num_generations \(3\)/,
    );
    expect(errorOf(BASE.replace(/quick:\n[^]*$/, 'quick: 5\n'))).toMatch(
      /inline\.yaml:11:8: quick: expected a mapping of field paths to values/,
    );
    expect(errorOf(BASE.replace('  stages.1.max_steps: 5\n', '  quick.x: 5\n'))).toMatch(
      /inline\.yaml:13:3: quick quick\.x: the quick: section cannot override itself/,
    );
  });
});

// The shape of r1-zero.yaml's quick profile: skip pretraining, start the rest from a checkpoint folder.
const SKIP = BASE.replace(
  /quick:\n[^]*$/,
  `quick:
  stages.pretrain: null
  tokenizer.train: null
  tokenizer.path: data/corpus.jsonl
  stages.reasoning.model: ckpt
  stages.reasoning.max_steps: 5
  stages.2.max_samples: 8
  stages.reasoning.max_prompt_length: 32
  stages.reasoning.max_completion_length: 16
  stages.eval.max_new_tokens: 16
`,
); // ckpt's context is 64 tokens

describe('quick: leaving a stage out (stages.<name>: null)', () => {
  it('drops the stage from the quick run only; the others keep their overrides, given by name or full-recipe index', () => {
    const quick = load(SKIP, { quick: true });
    expect(quick.stages.map((s) => s.name)).toEqual(['reasoning', 'eval']);
    const reasoning = quick.stages[0] as GrpoStage;
    expect([reasoning.model, reasoning.max_steps, reasoning.max_completion_length]).toEqual(['ckpt', 5, 16]);
    // stages.2 is the full recipe's eval, applied before the pretrain stage was removed.
    expect(quick.stages[1].max_samples).toBe(8);
    expect(modelSource(quick, 0)).toEqual({ kind: 'checkpoint', path: join(DIR, 'ckpt') });
    expect(modelSource(quick, 1)).toEqual({ kind: 'stage', stage: 'reasoning' });
    const full = load(SKIP);
    expect(full.stages.map((s) => s.name)).toEqual(['pretrain', 'reasoning', 'eval']);
  });

  it('a stage that still names the left-out stage is an error naming it', () => {
    const text = SKIP.replace('  stages.reasoning.model: ckpt\n', '  stages.reasoning.model: pretrain\n');
    expect(errorOf(text, { quick: true })).toMatch(
      /quick stages\.reasoning\.model: stages\.0\.model: 'pretrain' is neither an earlier stage \(there are no earlier stages\) nor a checkpoint directory/,
    );
  });

  it('an error in a later stage still names the override that caused it', () => {
    const text = SKIP.replace('  stages.reasoning.max_steps: 5\n', '  stages.reasoning.max_steps: 0\n');
    expect(errorOf(text, { quick: true })).toMatch(
      /inline\.yaml:16:3: quick stages\.reasoning\.max_steps: stages\.0\.max_steps: must be > 0, got 0/,
    );
  });

  it('--set can leave a stage out too, but a null written in the stages list itself is still rejected', () => {
    const r = load(BASE, { set: ['stages.eval=null'] });
    expect(r.stages.map((s) => s.name)).toEqual(['pretrain', 'reasoning']);
    const literal = BASE.replace('  - { type: eval, datasets: [data/tasks.jsonl] }\n', '  - null\n');
    expect(errorOf(literal)).toMatch(/stages\.2/);
  });
});

describe('field paths name list entries by index or by name', () => {
  it('a stage by its name (default: its type), in --set and in quick:', () => {
    const r = load(BASE, { set: ['stages.pretrain.max_steps=77', 'stages.reasoning.beta=0', 'stages.eval.num_generations=2'] });
    expect(pretrain(r).max_steps).toBe(77);
    expect(grpo(r).beta).toBe(0);
    expect((r.stages[2] as EvalStage).num_generations).toBe(2);
    expect(load(BASE, { quick: true }).stages[2].max_samples).toBe(8); // quick's stages.eval.max_samples
  });

  it('a reward by its name', () => {
    const r = load(BASE, { set: ['stages.reasoning.rewards.format.weight=0.25'] });
    expect(grpo(r).rewards.map((x) => x.weight)).toEqual([1, 0.25]);
  });

  it('unknown or ambiguous names are errors that list the names', () => {
    expect(errorOf(BASE, { set: ['stages.sft.max_steps=1'] })).toMatch(
      /inline\.yaml: --set stages\.sft\.max_steps=1: stages is a list of 3 entries; 'sft' is neither an index 0\.\.2 nor the name of an entry \(names: pretrain, reasoning, eval\)/,
    );
    const twice = BASE.replace('[{ name: accuracy }, { name: format, weight: 0.5 }]', '[{ name: format }, { name: format, weight: 0.5 }]');
    expect(errorOf(twice, { set: ['stages.reasoning.rewards.format.weight=1'] })).toMatch(/'format' names entries 0 and 1; give the index/);
  });

  it('follows merged YAML anchors when reading names', () => {
    const text = `name: t\ntokenizer:\n  train: { datasets: [data/corpus.jsonl] }\nx-pre: &pre { name: base, type: pretrain }\nstages:\n  - <<: *pre\n    datasets: [data/corpus.jsonl]\n`;
    expect(pretrain(load(text, { set: ['stages.base.max_steps=3'] })).max_steps).toBe(3);
  });
});

describe('CLI', () => {
  async function cli(register: (p: import('commander').Command) => void, args: string[]): Promise<string> {
    const { Command } = await import('commander');
    const program = new Command('r1').exitOverride();
    register(program);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(args, { from: 'user' });
    } finally {
      spy.mockRestore();
      err.mockRestore();
    }
    return out.join('');
  }

  it('r1 run --quick loads the quick-applied recipe, with --set on top; r1 run without it the full one', async () => {
    const { mkdtempSync, rmSync, writeFileSync, cpSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { register } = await import('../src/cli/commands/run.ts');
    const root = mkdtempSync(join(tmpdir(), 'r1-quick-'));
    try {
      cpSync(join(DIR, 'data'), join(root, 'data'), { recursive: true });
      const file = join(root, 'q.yaml');
      writeFileSync(file, BASE);
      ran.length = 0;
      await cli(register, ['run', file, '--quick', '--set', 'stages.reasoning.max_steps=3']);
      await cli(register, ['run', file]);
      expect(ran.map((r) => [r.name, pretrain(r).max_steps, grpo(r).max_steps])).toEqual([
        ['t-quick', 30, 3],
        ['t', 1200, 100],
      ]);

      // r1 recipe <file> --quick: the check shows the quick run's name and what each entry changes.
      const { register: registerRecipe } = await import('../src/cli/commands/recipe.ts');
      const out = await cli(registerRecipe, ['recipe', file, '--quick']);
      expect(out).toMatch(/ok: .*q\.yaml: recipe 't-quick'/);
      expect(out).toContain(
        'quick overrides (run folder runs/t-quick):\n  stages.pretrain.max_steps: 1200 -> 30\n  stages.1.max_steps: 100 -> 5\n  stages.eval.max_samples: null -> 8\n',
      );
      expect(await cli(registerRecipe, ['recipe', '--check', file])).toMatch(/recipe 't',/);
      // A stage the profile leaves out is named, not printed in full.
      writeFileSync(file, SKIP);
      cpSync(join(DIR, 'ckpt'), join(root, 'ckpt'), { recursive: true });
      const skipping = await cli(registerRecipe, ['recipe', file, '--quick']);
      expect(skipping).toMatch(/ 0\. reasoning \(grpo\) from .*ckpt, config hash/);
      expect(skipping).toContain(
        'quick overrides (run folder runs/t-quick):\n  stages.pretrain: pretrain stage -> left out\n  tokenizer.train: {',
      );
      writeFileSync(file, BASE.slice(0, BASE.indexOf('quick:')));
      await expect(cli(registerRecipe, ['recipe', file, '--quick'])).rejects.toThrow(/--quick: this recipe has no quick: section/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
