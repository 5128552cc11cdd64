import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('run')
    .description('run a recipe: every stage in order, skipping finished ones and resuming an interrupted one')
    .argument('<recipe>', 'recipe YAML file')
    .option(
      '--set <path=value...>',
      'override a recipe field, e.g. --set stages.1.learning_rate=1e-4 or stages.grpo.max_steps=10 (a stage by index or name)',
      [],
    )
    .option('--quick', "apply the recipe's quick: overrides (then --set) for a run of minutes, in its own folder runs/<name>-quick", false)
    .option('--fresh', 'delete the run folder and start over', false)
    .option('--only <stage>', 'run only this stage')
    .option('--from <stage>', 'rerun this stage and every stage after it')
    .option(
      '--on-no-workers <mode>',
      'with a cluster: when no worker is alive, wait (saying so) or fail (exit non-zero); sets cluster.on_no_workers',
    )
    .action(
      async (file: string, opts: { set: string[]; quick: boolean; fresh: boolean; only?: string; from?: string; onNoWorkers?: string }) => {
        if (opts.onNoWorkers) opts.set = [...opts.set, `cluster.on_no_workers=${opts.onNoWorkers}`];
        // Loaded on use: `r1 --help` and light commands stay fast.
        const { loadRecipe } = await import('../../recipe/index.ts');
        const { runRecipe } = await import('../../pipeline/run.ts');
        const recipe = loadRecipe(file, { set: opts.set, quick: opts.quick });
        // Refused before any stage runs when a stage will not fit its memory (exit 2, with the fix).
        const { applyPlan, assertPlanFits, planRecipe } = await import('../../pipeline/memory-check.ts');
        const plan = planRecipe(recipe);
        assertPlanFits(plan);
        for (const line of applyPlan(recipe, plan)) process.stderr.write(`${line}\n`);
        const { runDir } = await runRecipe(recipe, { fresh: opts.fresh, only: opts.only, from: opts.from });
        process.stderr.write(`run folder: ${runDir}\n`);
      },
    );
}
