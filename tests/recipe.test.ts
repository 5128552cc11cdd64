import { join } from 'node:path';
import { recipeError } from './fixtures/recipes/errors.ts';
import { describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.ts';
import {
  STAGE_SCHEMAS,
  RecipeSchema,
  datasetSources,
  explain,
  loadRecipe,
  modelSource,
  parseRecipe,
  recipeHash,
  stageHash,
  type GrpoStage,
} from '../src/recipe/index.ts';
import { describeFields } from '../src/recipe/explain.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'recipes');
const FILE = join(DIR, 'inline.yaml'); // parseRecipe only needs its directory to exist

const HEAD = `name: t
tokenizer:
  train: { datasets: [data/corpus.jsonl] }
stages:
`;

/** The UserError message parseRecipe throws for this recipe text. */
const errorOf = (text: string, set?: string[]): string => recipeError(text, FILE, { set });

describe('loadRecipe', () => {
  it('fills defaults, stage names and epsilon_high, and anchors paths at the recipe file', () => {
    const r = loadRecipe(join(DIR, 'r1.yaml'));
    expect(r.file).toBe(join(DIR, 'r1.yaml'));
    expect(r.recipeDir).toBe(DIR);
    expect(r.model.hidden_size).toBe(64);
    expect(r.model.num_key_value_heads).toBe(2);
    expect(r.stages.map((s) => s.name)).toEqual(['pretrain', 'cold-start', 'reasoning', 'samples', 'sft-again', 'dpo', 'eval']);
    const grpo = r.stages[2] as GrpoStage;
    expect(grpo).toMatchObject({ epsilon: 0.2, epsilon_high: 0.2, beta: 0.04, weight_decay: 0.1, adam_beta2: 0.95, loss_type: 'grpo' });
    expect(grpo.rewards).toEqual([
      { name: 'accuracy', weight: 1, options: {} },
      { name: 'format', weight: 0.5, options: {} },
    ]);
    const ev = r.stages[6];
    expect(ev.type === 'eval' && ev.rewards.map((x) => x.name)).toEqual(['accuracy', 'format']);
    expect(r.stages[1].type === 'sft' && r.stages[1].learning_rate).toBe(1e-4);
  });

  it('resolves where each stage takes its weights and data from', () => {
    const r = loadRecipe(join(DIR, 'r1.yaml'));
    expect(modelSource(r, 0)).toEqual({ kind: 'init' });
    expect(modelSource(r, 1)).toEqual({ kind: 'stage', stage: 'pretrain' });
    // rejection sampling writes no checkpoint: the stage after it keeps the model before it
    expect(modelSource(r, 3)).toEqual({ kind: 'stage', stage: 'reasoning' });
    expect(modelSource(r, 4)).toEqual({ kind: 'stage', stage: 'pretrain' });
    expect(datasetSources(r, 4)).toEqual([{ kind: 'stage', stage: 'samples' }]);
    expect(datasetSources(r, 0)).toEqual([{ kind: 'file', path: join(DIR, 'data', 'corpus.jsonl') }]);
    expect(datasetSources(r, 3, 'mix')).toEqual([{ kind: 'file', path: join(DIR, 'data', 'chat.jsonl') }]);
  });

  it('takes a checkpoint directory as a model and checks lengths against its config.json', () => {
    const text = `stages:\n  - type: grpo\n    model: ckpt\n    datasets: [data/tasks.jsonl]\n    max_prompt_length: 32\n    max_completion_length: 32\n`;
    const r = parseRecipe(text, FILE);
    expect(modelSource(r, 0)).toEqual({ kind: 'checkpoint', path: join(DIR, 'ckpt') });
    expect(errorOf(text, ['stages.0.max_completion_length=33'])).toMatch(/65 exceeds the model context \(max_position_embeddings = 64\)/);
  });

  it('names the run after the file unless told, and merges YAML anchors kept under x- keys', () => {
    const text = `tokenizer: { path: ckpt/config.json }\nx-train: &train { learning_rate: 0.01, max_steps: 5 }\nstages:\n  - { type: pretrain, datasets: [data/corpus.jsonl], <<: *train }\n`;
    const r = parseRecipe(text, join(DIR, 'my tiny.yaml'));
    expect(r.name).toBe('my-tiny');
    expect(r.stages[0]).toMatchObject({ learning_rate: 0.01, max_steps: 5 });
    expect(() => parseRecipe(text.replace('x-train', 'train'), FILE)).toThrow(/:2:1: train: unknown key 'train'/);
  });

  it('applies --set overrides, with the value parsed as YAML', () => {
    const r = loadRecipe(join(DIR, 'r1.yaml'), {
      set: ['stages.1.learning_rate=3e-4', 'seed=9', 'stages.2.stop=["</answer>"]', 'model.rope_theta=500'],
    });
    expect(r.stages[1].type === 'sft' && r.stages[1].learning_rate).toBe(3e-4);
    expect(r.seed).toBe(9);
    expect(r.stages[2].type === 'grpo' && r.stages[2].stop).toEqual(['</answer>']);
    expect(r.model.rope_theta).toBe(500);
  });
});

describe('recipe errors name file:line:column and the field path', () => {
  const stage = (body: string) => `${HEAD}  - type: pretrain\n    datasets: [data/corpus.jsonl]\n${body}`;

  it('YAML syntax', () => {
    expect(errorOf(`${HEAD}  - type: pretrain\n    datasets: [data/corpus.jsonl\n`)).toMatch(/inline\.yaml:\d+:\d+: YAML syntax error/);
    expect(errorOf('seed: 1\nseed: 2\n')).toMatch(/inline\.yaml:2:1: YAML syntax error: Map keys must be unique/);
  });

  it('unknown keys, with the nearest valid key', () => {
    expect(errorOf(stage('    lerning_rate: 0.1\n'))).toMatch(
      /inline\.yaml:7:5: stages\.0\.lerning_rate: unknown key 'lerning_rate' \(did you mean 'learning_rate'\?\)/,
    );
    expect(errorOf(`mdoel: {}\n${HEAD}  - { type: eval, datasets: [data/tasks.jsonl] }\n`)).toMatch(
      /inline\.yaml:1:1: mdoel: unknown key 'mdoel' \(did you mean 'model'\?\)/,
    );
    expect(errorOf(`model: { hiden_size: 64 }\n${HEAD}  - { type: eval, datasets: [data/tasks.jsonl] }\n`)).toMatch(
      /:1:10: model\.hiden_size: .*did you mean 'hidden_size'/,
    );
    // a key of another stage type is unknown here, and nothing far off is suggested
    expect(errorOf(stage('    num_generations: 4\n'))).toMatch(/stages\.0\.num_generations: unknown key 'num_generations'$/m);
    expect(errorOf(`${HEAD}  - type: pretrian\n`)).toMatch(
      /:5:5: stages\.0\.type: unknown stage type "pretrian" \(did you mean 'pretrain'\?\)/,
    );
  });

  it('wrong types and out-of-range values', () => {
    expect(errorOf(stage('    learning_rate: fast\n'))).toMatch(/:7:5: stages\.0\.learning_rate: expected number, got "fast"/);
    expect(errorOf(stage('    max_grad_norm: -1\n'))).toMatch(/:7:5: stages\.0\.max_grad_norm: must be >= 0, got -1$/);
    expect(errorOf(stage('    adam_beta2: 1\n'))).toMatch(/stages\.0\.adam_beta2: must be < 1, got 1$/);
    expect(errorOf(stage('    lr_scheduler_type: cosin\n'))).toMatch(
      /stages\.0\.lr_scheduler_type: expected one of multistep, cosine, constant, linear; got "cosin" \(did you mean 'cosine'\?\)/,
    );
    expect(errorOf(stage('    max_samples: 0\n'))).toMatch(/stages\.0\.max_samples: must be > 0, got 0$/);
    expect(errorOf(stage(''), ['stages.0.datasets=[]'])).toMatch(/stages\.0\.datasets: this stage needs at least one dataset/);
    expect(errorOf(stage('    max_steps: 2.5\n'))).toMatch(/stages\.0\.max_steps: .*int/i);
    expect(errorOf(`backend: gpu\n${HEAD}  - { type: eval, datasets: [data/tasks.jsonl] }\n`)).toMatch(/:1:1: backend: .*"gpu"/);
    expect(errorOf('seed: 1\n')).toMatch(/stages: missing required field/);
  });

  it('unknown reward names and options, before any stage runs', () => {
    const grpo = (rewards: string) => `${HEAD}  - type: eval\n    datasets: [data/tasks.jsonl]\n    rewards:\n${rewards}`;
    expect(errorOf(grpo('      - { name: acuracy }\n'))).toMatch(
      /:8:11: stages\.0\.rewards\.0\.name: unknown reward 'acuracy' \(did you mean 'accuracy'\?\)/,
    );
    expect(errorOf(grpo('      - { name: accuracy, options: { taged_only: true } }\n'))).toMatch(
      /stages\.0\.rewards\.0\.options: reward 'accuracy': unknown option 'taged_only'; valid: field, tagged_only/,
    );
  });

  it('stage references that do not point backwards, and missing files', () => {
    const two = `${HEAD}  - type: sft\n    model: later\n    datasets: [data/chat.jsonl]\n  - name: later\n    type: pretrain\n    datasets: [data/corpus.jsonl]\n`;
    expect(errorOf(two)).toMatch(/:6:5: stages\.0\.model: names stage 'later' \(stages\.1\), which does not come before this stage/);
    expect(errorOf(two, ['stages.0.model=nowhere'])).toMatch(
      /stages\.0\.model: 'nowhere' is neither an earlier stage .* nor a checkpoint directory/,
    );
    expect(
      errorOf(stage('  - { type: sft, model: eval, datasets: [data/chat.jsonl] }\n  - { type: eval, datasets: [data/tasks.jsonl] }\n'), [
        'stages.1.model=pretrain',
        'stages.2.model=pretrain',
        'stages.1.datasets=[eval]',
      ]),
    ).toMatch(/stages\.1\.datasets\.0: names stage 'eval' \(stages\.2\), which does not come before this stage/);
    expect(errorOf(stage('  - { type: sft, datasets: [pretrain] }\n'))).toMatch(
      /stages\.1\.datasets\.0: names stage 'pretrain', a pretrain stage, which writes no dataset/,
    );
    expect(errorOf(stage('  - { type: sft, datasets: [data/missing.jsonl] }\n'))).toMatch(
      /:7:29: stages\.1\.datasets\.0: dataset file not found: .*missing\.jsonl/,
    );
    expect(errorOf(stage('  - { type: sft, datasets: [samples] }\n'))).toMatch(
      /dataset file not found: .*samples \(and no earlier stage is named 'samples'\)/,
    );
    expect(errorOf(stage(''), ['tokenizer.train.datasets=[nope.jsonl]'])).toMatch(/tokenizer\.train\.datasets\.0: dataset file not found/);
  });

  it('duplicate stage names', () => {
    expect(errorOf(stage('  - { type: pretrain, datasets: [data/corpus.jsonl] }\n'))).toMatch(
      /:7:5: stages\.1\.name: duplicate stage name 'pretrain' \(also stages\.0\)/,
    );
  });

  it('GRPO group size, batch, rewards and lengths', () => {
    const grpo = (body: string) => `${HEAD}  - type: grpo\n    datasets: [data/tasks.jsonl]\n${body}`;
    expect(errorOf(grpo('    num_generations: 3\n    per_device_train_batch_size: 16\n'))).toMatch(
      /:8:5: stages\.0\.per_device_train_batch_size: 16 completions per step is not divisible by num_generations \(3\)/,
    );
    expect(errorOf(grpo('    max_steps: -1\n'))).toMatch(/stages\.0\.max_steps: must be > 0, got -1/);
    expect(errorOf(grpo('    num_generations: 1\n'))).toMatch(/:7:5: stages\.0\.num_generations: the group size must be at least 2/);
    expect(errorOf(grpo('    rewards: []\n'))).toMatch(/:7:5: stages\.0\.rewards: needs at least one reward function/);
    expect(errorOf(grpo('    rewards: [{ name: rewards/none.ts }]\n'))).toMatch(/stages\.0\.rewards\.0\.name: reward module not found/);
    expect(errorOf(grpo('    max_prompt_length: 200\n    max_completion_length: 100\n'))).toMatch(
      /:8:5: stages\.0\.max_completion_length: max_prompt_length \+ max_completion_length = 300 exceeds the model context \(max_position_embeddings = 256\)/,
    );
    expect(errorOf(grpo('    template: "Q: no placeholder"\n'))).toMatch(/stages\.0\.template: .*no \{prompt\} placeholder/);
    // Greedy decoding has no log-probs to ratio: at 0 every weight became NaN and the stage still ended "done".
    expect(errorOf(grpo('    temperature: 0\n'))).toMatch(/:7:5: stages\.0\.temperature: GRPO samples: the temperature must be > 0/);
  });

  it('GRPO options that cannot work together', () => {
    const grpo = (body: string) =>
      `${HEAD}  - type: grpo\n    datasets: [data/tasks.jsonl]\n    per_device_train_batch_size: 4\n    num_generations: 2\n${body}`;
    expect(errorOf(grpo('    gradient_accumulation_steps: 5\n'))).toMatch(
      /:9:5: stages\.0\.gradient_accumulation_steps: 5 micro-batches cannot split 4 completions/,
    );
    expect(() => parseRecipe(grpo('    gradient_accumulation_steps: 3\n'), FILE)).not.toThrow(); // 2, 1, 1: fine
    expect(errorOf(grpo('    kl_in_reward: true\n    beta: 0\n'))).toMatch(/stages\.0\.kl_in_reward: needs beta > 0/);
    expect(errorOf(grpo('    delta: 1.1\n    epsilon_high: 0.28\n'))).toMatch(
      /stages\.0\.delta: 1\.1 is not above 1 \+ epsilon_high \(1\.28\)/,
    );
    expect(errorOf(grpo('    loss_type: cispo\n    epsilon_high: 0.2\n'))).toMatch(
      /stages\.0\.epsilon_high: for cispo it caps the ratio itself and must be > 1/,
    );
    expect(errorOf(grpo('    loss_type: spo\n'))).toMatch(
      /stages\.0\.loss_type: .*'grpo' \| 'dapo' \| 'bnpo' \| 'dr_grpo' \| 'cispo'|stages\.0\.loss_type: .*cispo/,
    );
    expect(errorOf(grpo('    dynamic_sampling: { max_batches: 1 }\n'))).toMatch(/stages\.0\.dynamic_sampling\.max_batches/);
    expect(errorOf(grpo('    top_entropy_quantile: 0\n'))).toMatch(/stages\.0\.top_entropy_quantile/);
  });

  it('GRPO cispo caps the ratio at 5 unless told (epsilon_high is the cap itself)', () => {
    const r = parseRecipe(`${HEAD}  - type: grpo\n    datasets: [data/tasks.jsonl]\n    loss_type: cispo\n`, FILE);
    expect(r.stages[0]).toMatchObject({ loss_type: 'cispo', epsilon_high: 5 });
  });

  it('model and tokenizer consistency', () => {
    expect(errorOf(`model: { vocab_size: 1000 }\n${HEAD}  - { type: eval, datasets: [data/tasks.jsonl] }\n`)).toMatch(
      /:1:10: model\.vocab_size: is 1000 but tokenizer\.train\.vocab_size is 512/,
    );
    expect(errorOf(`model: { num_key_value_heads: 3 }\n${HEAD}  - { type: eval, datasets: [data/tasks.jsonl] }\n`)).toMatch(
      /model\.num_key_value_heads: must divide num_attention_heads/,
    );
    expect(errorOf('stages:\n  - { type: eval, datasets: [data/tasks.jsonl] }\n')).toMatch(
      /tokenizer: the first stage starts from a fresh model/,
    );
  });

  it('reports every problem at once', () => {
    const msg = errorOf(`${HEAD}  - type: pretrain\n    datasets: [data/corpus.jsonl]\n    seq_lenght: 64\n    learning_rate: x\n`);
    expect(msg.split('\n')).toHaveLength(2);
  });

  it('bad --set paths', () => {
    const ok = `${HEAD}  - { type: eval, datasets: [data/tasks.jsonl] }\n`;
    expect(errorOf(ok, ['stages.3.temperature=1'])).toMatch(
      /inline\.yaml: --set stages\.3\.temperature=1: stages is a list of 1 entries; '3' is not an index 0\.\.0/,
    );
    expect(errorOf(ok, ['seed.x=1'])).toMatch(/inline\.yaml: --set seed\.x=1: seed: expected number, got a mapping/);
    expect(errorOf(ok, ['name.x=1'])).toMatch(/--set name\.x=1: name is a value, not a mapping or list/);
    expect(errorOf(ok, ['stages.0.temprature=1'])).toMatch(
      /inline\.yaml: --set stages\.0\.temprature=1: stages\.0\.temprature: unknown key 'temprature' \(did you mean 'temperature'\?\)/,
    );
    expect(errorOf(ok, ['stages.0.temperature'])).toMatch(/expected field\.path=value/);
    expect(errorOf(ok, ['stages.0.temperature=hot'])).toMatch(
      /--set stages\.0\.temperature=hot: stages\.0\.temperature: expected number, got "hot"/,
    );
  });
});

describe('recipe hashes', () => {
  const base = `${HEAD}  - { type: pretrain, datasets: [data/corpus.jsonl] }\n  - { type: sft, datasets: [data/chat.jsonl] }\n  - { type: eval, datasets: [data/tasks.jsonl] }\n`;
  const hashes = (text: string, set?: string[]) => {
    const r = parseRecipe(text, FILE, { set });
    return r.stages.map((_, i) => stageHash(r, i));
  };

  it('covers a stage and the ones before it, not the ones after', () => {
    const h = hashes(base);
    expect(new Set(h).size).toBe(3);
    const changed = hashes(base, ['stages.1.learning_rate=1e-3']);
    expect(changed[0]).toBe(h[0]);
    expect(changed[1]).not.toBe(h[1]);
    expect(changed[2]).not.toBe(h[2]);
    for (const set of ['seed=5', 'model.hidden_size=64', 'tokenizer.train.vocab_size=300']) {
      const v = set.startsWith('tokenizer') ? ['model.vocab_size=0', set] : [set];
      expect(hashes(base, v)[0]).not.toBe(h[0]);
    }
  });

  it('ignores key order, spelled-out defaults, and bookkeeping fields', () => {
    const h = hashes(base);
    const reordered = `${HEAD}  - { datasets: [data/corpus.jsonl], type: pretrain, weight_decay: 0.1 }\n  - { type: sft, datasets: [data/chat.jsonl], logging_steps: 50 }\n  - { type: eval, datasets: [data/tasks.jsonl] }\n`;
    expect(hashes(reordered)).toEqual(h);
    const r = parseRecipe(base, FILE);
    expect(recipeHash(r)).toBe(h[2]);
    expect(recipeHash(parseRecipe(base, FILE, { set: ['name=other', 'output_dir=elsewhere'] }))).toBe(h[2]);
  });
});

describe('explain', () => {
  it('gives every field of every stage type a doc and lists it (the shared model fields with all)', () => {
    for (const [type, schema] of Object.entries(STAGE_SCHEMAS)) {
      const text = explain(type, { all: true });
      for (const f of describeFields(schema, '')) {
        expect(f.doc, `${type}.${f.path}`).not.toBe('');
        expect(text).toContain(f.path);
      }
    }
    for (const f of describeFields(RecipeSchema, '')) expect(f.doc, f.path).not.toBe('');
  });

  it('shows defaults', () => {
    expect(explain('grpo')).toMatch(/beta\s+number = 0\.04\s+weight of the KL penalty/);
    expect(explain('grpo', { width: 200 })).toMatch(/beta\s+number = 0\.04\n\s+weight of the KL penalty/);
    expect(explain('grpo')).toMatch(/rewards\s+list of mapping = \[accuracy, format\]/);
    expect(explain()).toMatch(/model\.max_position_embeddings\s+int = 256/);
    expect(() => explain('ppo')).toThrow(/unknown stage type 'ppo'/);
  });

  it("lists a stage type's own fields first, by group, the shared model fields last and only with all, wrapped to the width", () => {
    const text = explain('grpo', { width: 80 });
    const lines = text.split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(
      explain('grpo', { width: 50 })
        .split('\n')
        .every((l) => l.length <= 50),
    ).toBe(true);
    // groups in order, each field under its group
    const at = (line: string) => lines.findIndex((l) => l.startsWith(line));
    const groups = [
      'the stage',
      'sampling',
      'rewards',
      'loss and advantages',
      'KL to the reference model',
      'data and prompts',
      'schedule and optimiser',
    ].map(at);
    expect(groups.every((i) => i > 0)).toBe(true);
    expect([...groups].sort((a, b) => a - b)).toEqual(groups);
    const field = (name: string) => lines.findIndex((l) => new RegExp(`^  ${name.replace('.', '\\.')}\\s`).test(l));
    const groupOf = (name: string) => groups.filter((g) => g < field(name)).length - 1;
    expect(groupOf('num_generations')).toBe(1);
    expect(groupOf('temperature')).toBe(1);
    expect(groupOf('rewards')).toBe(2);
    expect(groupOf('loss_type')).toBe(3);
    expect(groupOf('epsilon')).toBe(3);
    expect(groupOf('advantage_estimator')).toBe(3);
    expect(groupOf('beta')).toBe(4);
    expect(groupOf('datasets')).toBe(5);
    expect(groupOf('learning_rate')).toBe(6);
    // the loss fields come early (on the first screen at 100 columns), not after the model fields
    expect(
      explain('grpo', { width: 100 })
        .split('\n')
        .findIndex((l) => /^  advantage_estimator\s/.test(l)),
    ).toBeLessThan(50);
    // shared model fields: one line saying how to list them; with all, listed after every own field
    expect(text).not.toMatch(/init_config\.hidden_size/);
    expect(text).toMatch(/--explain grpo --all/);
    const all = explain('grpo', { all: true, width: 80 }).split('\n');
    const lastOwn = all.findIndex((l) => /^  rollout\.is_cap\s/.test(l));
    expect(all.findIndex((l) => /^  init_config\.hidden_size\s/.test(l))).toBeGreaterThan(lastOwn);
    // DPO's beta is its loss's temperature: grouped with the loss there
    const dpo = explain('dpo', { width: 100 }).split('\n');
    const dpoLoss = dpo.findIndex((l) => l.startsWith('loss and advantages'));
    expect(dpo.findIndex((l) => /^  beta\s/.test(l))).toBeGreaterThan(dpoLoss);
    expect(dpo.some((l) => l.startsWith('KL to the reference'))).toBe(false);
  });
});

describe('r1 recipe', () => {
  // Only this command is registered, so the test does not depend on the other sub-commands.
  async function run(args: string[]): Promise<string> {
    const { Command } = await import('commander');
    const { register } = await import('../src/cli/commands/recipe.ts');
    const program = new Command('r1').exitOverride();
    register(program);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    try {
      await program.parseAsync(['recipe', ...args], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    return out.join('');
  }

  it('checks a good recipe, rejects a bad one with a UserError (exit code 2), and explains', async () => {
    expect(await run(['--check', join(DIR, 'r1.yaml')])).toMatch(
      /ok: .*r1\.yaml.*\n  0\. pretrain \(pretrain\) from fresh init, config hash [0-9a-f]{16}/,
    );
    const bad = run(['--check', join(DIR, 'r1.yaml'), '--set', 'stages.2.num_generations=5', '--set', 'seed=1']);
    await expect(bad).rejects.toThrow(/not divisible by num_generations \(5\)/);
    await expect(bad).rejects.toMatchObject({ exitCode: 2 });
    expect(await run(['--explain', 'dpo'])).toMatch(/loss_type\s+sigmoid \| ipo = "sigmoid"/);
    await expect(run([])).rejects.toThrow(UserError);
  });
});

describe('shipped recipes', () => {
  it('all validate against the shipped data (with the pretrain-tiny checkpoint and the hf-tiny directory the others start from)', async () => {
    const { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { loadRecipe } = await import('../src/recipe/index.ts');
    const root = mkdtempSync(join(tmpdir(), 'r1-recipes-'));
    try {
      cpSync('recipes', join(root, 'recipes'), { recursive: true });
      symlinkSync(join(process.cwd(), 'data'), join(root, 'data'));
      mkdirSync(join(root, 'runs', 'pretrain-tiny', 'pretrain', 'checkpoint'), { recursive: true });
      mkdirSync(join(root, 'runs', 'hf-tiny'), { recursive: true }); // what scripts/make-hf-tiny.ts writes
      // A Hugging Face cache holding Qwen2.5-0.5B-Instruct's config (recipes/grpo-qwen-lora.yaml names it;
      // the check reads no weight), in huggingface_hub's layout.
      const { writeFileSync } = await import('node:fs');
      const { QWEN25_05B_CONFIG } = await import('../scripts/make-random-qwen.ts');
      const repo = join(root, 'hf', 'models--Qwen--Qwen2.5-0.5B-Instruct');
      mkdirSync(join(repo, 'refs'), { recursive: true });
      mkdirSync(join(repo, 'snapshots', 'c0ffee'), { recursive: true });
      writeFileSync(join(repo, 'refs', 'main'), 'c0ffee');
      writeFileSync(join(repo, 'snapshots', 'c0ffee', 'config.json'), JSON.stringify(QWEN25_05B_CONFIG));
      const savedCache = process.env.HF_HUB_CACHE;
      process.env.HF_HUB_CACHE = join(root, 'hf');
      const files = readdirSync(join(root, 'recipes')).filter((f) => f.endsWith('.yaml'));
      expect(files.length).toBeGreaterThanOrEqual(5);
      try {
        for (const f of files) expect(loadRecipe(join(root, 'recipes', f)).stages.length, f).toBeGreaterThan(0);
      } finally {
        if (savedCache === undefined) delete process.env.HF_HUB_CACHE;
        else process.env.HF_HUB_CACHE = savedCache;
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('init_config', () => {
  it('holds only the fields it changes; the rest come from the recipe model', async () => {
    const { parseRecipe } = await import('../src/recipe/index.ts');
    const r = parseRecipe(
      'name: s\nmodel: { vocab_size: 1024, max_position_embeddings: 320 }\ntokenizer: { train: { datasets: [../data/chat.jsonl], vocab_size: 1024 } }\n' +
        'stages:\n  - { type: pretrain, datasets: [../data/corpus.jsonl] }\n  - { name: student, type: pretrain, model: init, datasets: [../data/corpus.jsonl], init_config: { hidden_size: 64 } }\n',
      'recipes/s.yaml',
    );
    expect(r.stages[1].init_config).toEqual({ hidden_size: 64 });
  });
});
