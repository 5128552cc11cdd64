import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import type { ModelSource } from '../../recipe/index.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

const showSource = (s: ModelSource) => (s.kind === 'init' ? 'fresh init' : s.kind === 'stage' ? `stage ${s.stage}` : s.path);

/** --gpu-memory's value in bytes (GiB: an "80 GB" A100 or H100 has 80 GiB, 81,920 MiB). */
function gpuMemoryBytes(value: string): number {
  const gb = Number(value);
  if (!Number.isFinite(gb) || gb <= 0)
    throw new UserError(`--gpu-memory ${value}: give the GPU's memory in GiB, a positive number (e.g. 80)`);
  return gb * 2 ** 30;
}

export function register(program: Command): void {
  program
    .command('recipe')
    .description('explain the recipe fields, or check a recipe file without running it')
    .argument('[file]', 'a recipe to check (same as --check <file>)')
    .option(
      '--explain [stage-type]',
      'print every field with its default and doc (of one stage type if given: its own fields by group, the shared model fields with --all)',
    )
    .option('--all', 'with --explain <stage-type>: also list the model architecture fields every stage type shares (init_config.*)', false)
    .option('--check <file>', 'validate a recipe; exit code 2 and located messages if it is bad')
    .option(
      '--set <field=value>',
      'override a field, e.g. stages.1.learning_rate=1e-4 or stages.grpo.max_steps=10 (repeatable)',
      collect,
      [],
    )
    .option('--quick', 'check the recipe with its quick: overrides applied (what r1 run --quick runs)', false)
    .option(
      '--gpu-memory <GB>',
      "the GPU adapter's memory in GiB (80 for an 80 GB A100 or H100), for the memory plan of a recipe on backend webgpu or tensorflow: a stage that needs more is refused (WebGPU cannot tell an adapter's memory itself)",
    )
    .action(
      async (
        file: string | undefined,
        opts: { explain?: string | boolean; all: boolean; check?: string; set: string[]; quick: boolean; gpuMemory?: string },
      ) => {
        // Loaded on use: `r1 --help` and light commands stay fast.
        const { canonicalJson, explain, fieldAt, loadRecipe, modelSource, stageHash } = await import('../../recipe/index.ts');
        if (opts.explain !== undefined) {
          process.stdout.write(explain(typeof opts.explain === 'string' ? opts.explain : undefined, { all: opts.all }) + '\n');
          return;
        }
        if (file !== undefined && opts.check !== undefined && file !== opts.check)
          throw new UserError(`two recipes given (${file} and --check ${opts.check}); check one at a time`);
        const check = opts.check ?? file;
        if (!check) throw new UserError('give --explain [stage-type] or --check <file>');
        const recipe = loadRecipe(check, { set: opts.set, quick: opts.quick });
        process.stdout.write(`ok: ${check}: recipe '${recipe.name}', seed ${recipe.seed}, backend ${recipe.backend}\n`);
        recipe.stages.forEach((s, i) => {
          process.stdout.write(
            `  ${i}. ${s.name} (${s.type}) from ${showSource(modelSource(recipe, i))}, config hash ${stageHash(recipe, i)}\n`,
          );
        });
        // The memory each training stage needs, before any runs: a stage that will not fit is exit 2.
        const { assertPlanFits, formatPlan, planRecipe } = await import('../../pipeline/memory-check.ts');
        const plan = planRecipe(recipe, opts.gpuMemory === undefined ? {} : { deviceBytes: gpuMemoryBytes(opts.gpuMemory) });
        if (plan.stages.length) process.stdout.write(formatPlan(plan).join('\n') + '\n');
        if (opts.quick) {
          // What the quick profile changes, next to the full recipe's value, so a reader sees how small it is.
          const full = loadRecipe(check, { set: opts.set });
          process.stdout.write(`quick overrides (run folder ${recipe.output_dir}/${recipe.name}):\n`);
          for (const [path, value] of Object.entries(recipe.quick)) {
            const before = fieldAt(full, path);
            // A stage set to null is left out of the quick run: name it rather than print its whole config.
            const leftOut =
              value === null && /^stages\.[^.]+$/.test(path) && typeof (before as { type?: unknown } | undefined)?.type === 'string';
            if (leftOut) process.stdout.write(`  ${path}: ${(before as { type: string }).type} stage -> left out\n`);
            else process.stdout.write(`  ${path}: ${canonicalJson(before)} -> ${canonicalJson(fieldAt(recipe, path) ?? value)}\n`);
          }
        }
        assertPlanFits(plan);
      },
    );
}
