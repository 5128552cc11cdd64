import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { explain, loadRecipe, modelSource, stageHash, type ModelSource } from '../../recipe/index.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

const showSource = (s: ModelSource) => (s.kind === 'init' ? 'fresh init' : s.kind === 'stage' ? `stage ${s.stage}` : s.path);

export function register(program: Command): void {
  program
    .command('recipe')
    .description('explain the recipe fields, or check a recipe file without running it')
    .option('--explain [stage-type]', 'print every field with its default and doc (of one stage type if given)')
    .option('--check <file>', 'validate a recipe; exit code 2 and located messages if it is bad')
    .option('--set <field=value>', 'override a field, e.g. stages.1.learning_rate=1e-4 (repeatable)', collect, [])
    .action((opts: { explain?: string | boolean; check?: string; set: string[] }) => {
      if (opts.explain !== undefined) {
        process.stdout.write(explain(typeof opts.explain === 'string' ? opts.explain : undefined) + '\n');
        return;
      }
      if (!opts.check) throw new UserError('give --explain [stage-type] or --check <file>');
      const recipe = loadRecipe(opts.check, { set: opts.set });
      process.stdout.write(`ok: ${opts.check}: recipe '${recipe.name}', seed ${recipe.seed}, backend ${recipe.backend}\n`);
      recipe.stages.forEach((s, i) => {
        process.stdout.write(`  ${i}. ${s.name} (${s.type}) from ${showSource(modelSource(recipe, i))}, config hash ${stageHash(recipe, i)}\n`);
      });
    });
}
