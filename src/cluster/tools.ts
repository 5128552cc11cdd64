// A multi-turn rollout's tool calls on the cluster's reward workers (the issue's "tool calls go to
// reward workers like code rewards"): the trainer samples the turns, each call is a tool job. A
// trajectory's session stays on the trainer (its cells that ran without error); each job carries
// them, so a worker keeps nothing between jobs and any worker can serve any call (protocol.ts
// ToolJob). A job no worker could run costs that trajectory an error message, never the step.
import { type Language } from '../../sandbox/index.ts';
import type { ToolCall } from '../../rewards/types.ts';
import { CountingRunner, TOOL_LANGUAGES, type ToolLimits, type ToolSession } from '../rollout/tools.ts';
import { TOOL_NAMES } from '../rollout/recipe-check.ts';

/** What the runner needs of the cluster pool (ClusterPool.runTool). */
export type ToolJobs = {
  runTool(call: {
    tool: string;
    history: string[];
    code: string;
    limits: ToolLimits;
    sandbox?: { isolation: string };
  }): Promise<{ call: ToolCall; timedOut: boolean }>;
};

export class ClusterToolRunner extends CountingRunner {
  constructor(
    private readonly jobs: ToolJobs,
    private readonly limits: ToolLimits,
    private readonly sandbox?: { isolation: string },
  ) {
    super();
  }

  async call(session: ToolSession, tool: string, code: string): Promise<ToolCall> {
    this.metrics.calls++;
    const language = (TOOL_LANGUAGES as Record<string, Language>)[tool];
    if (!language) return this.failed({ tool, code, output: '', error: `unknown tool '${tool}': the tools are ${TOOL_NAMES.join(', ')}` });
    let answer: { call: ToolCall; timedOut: boolean };
    try {
      answer = await this.jobs.runTool({
        tool,
        history: [...session.history(language)],
        code,
        limits: this.limits,
        ...(this.sandbox ? { sandbox: this.sandbox } : {}),
      });
    } catch (e) {
      return this.failed({ tool, code, output: '', error: `no reward worker could run the call: ${(e as Error).message}` });
    }
    if (answer.timedOut) this.metrics.timeouts++;
    if (answer.call.error !== null) return this.failed(answer.call);
    session.remember(language, code);
    return answer.call;
  }

  /** The cluster pool is closed with the stage's rollouts (cluster/index.ts). */
  async close(): Promise<void> {}
}
