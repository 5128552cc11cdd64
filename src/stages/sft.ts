// Supervised fine-tuning on prompt/completion rows or chat rows (`messages`); by default the loss
// covers only completion (assistant) tokens. A row with `turns` (a multi-turn trajectory from
// rejection sampling with tools) keeps its tool outputs in the context with no loss on them, as GRPO
// does: only the model's own turns are trained, and only they count in the token normaliser.
import { UserError } from '../errors.ts';
import { applyTemplate, divergence, renderReply, templateName, type ChatMessage } from '../data/chat.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Row, StageContext, StageResult } from './context.ts';
import type { SftStage } from '../recipe/index.ts';
import { trainLoop } from '../train/trainer.ts';
import { rowTurns, trajectorySegments, type OutputRendering, type Segment, type TurnRowT } from '../data/trajectory.ts';
import { R1_FORMAT, TOOL_CALL_CLOSE, TRUNCATED_MARK, chatFormat, outputBody, toolSchemas, type CallFormat } from '../rollout/multi-turn.ts';
import type { ToolName } from '../rollout/tools.ts';
import type { ChatTemplate, ToolSchema } from '../model/chat-template.ts';
import { batchIndices, lmStep, totalSteps, type WeightedSequence, stageTrainOptions } from './batches.ts';

/** Token ids of one row with weight 1 on the tokens the loss covers: the completion's (with
 * completion_only_loss, else the prompt's too), never a tool output's (a row with `turns`). */
export function sftExample(row: Row, tok: Tokenizer, template: string, completionOnly: boolean, where: string): WeightedSequence {
  const ids: number[] = [],
    weights: number[] = [];
  /** `trained`: the completion's own text; 'tool': a tool's output, in the context only. */
  const push = (text: string, trained: boolean | 'tool') => {
    const weight = trained === 'tool' ? 0 : trained || !completionOnly ? 1 : 0;
    for (const id of tok.encode(text)) {
      ids.push(id);
      weights.push(weight);
    }
  };
  const own = tok.chatTemplate;
  let turns: TurnRowT[] | null = null;
  if (Array.isArray(row.messages)) {
    const messages = row.messages as ChatMessage[];
    // Chat rows always use the chat template. Each assistant turn is exactly the text the template
    // adds for it after the conversation before it, which must begin with what was pushed so far.
    let done = '';
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (typeof m?.content !== 'string' || typeof m?.role !== 'string')
        throw new UserError(`${where}: messages[${i}] needs string role and content`);
      if (m.role === 'assistant') {
        const { prompt, reply } = renderReply(messages.slice(0, i), m, own);
        if (!prompt.startsWith(done)) {
          throw new UserError(
            `${where}: ${templateName(own)} writes the earlier turns differently once messages[${i}] follows them, so their replies cannot be trained as written: ${divergence(done, prompt)}`,
          );
        }
        push(prompt.slice(done.length), false);
        push(reply, true);
        done = prompt + reply;
      }
    }
    if (!weights.includes(1)) throw new UserError(`${where}: no assistant message to train on`);
  } else if (typeof row.prompt === 'string' && typeof row.completion === 'string' && (turns = rowTurns(row, where))) {
    trajectoryExample(row as Row & { prompt: string; completion: string }, turns, tok, template, push, where);
    if (template !== 'chat') {
      ids.push(tok.eosId);
      weights.push(1);
    }
  } else if (typeof row.prompt === 'string' && typeof row.completion === 'string') {
    if (template === 'chat') {
      const { prompt, reply } = renderReply([{ role: 'user', content: row.prompt }], { role: 'assistant', content: row.completion }, own);
      push(prompt, false);
      push(reply, true);
    } else {
      push(applyTemplate(template, row.prompt), false);
      push(row.completion, true);
      ids.push(tok.eosId);
      weights.push(1);
    }
  } else {
    throw new UserError(`${where}: a row needs 'messages', or string 'prompt' and 'completion'`);
  }
  const start = tok.documentStart.every((id, i) => ids[i] === id) ? [] : tok.documentStart;
  return { ids: [...start, ...ids], weights: [...start.map(() => 0), ...weights] };
}

/** Stands for an assistant's content where the chat template's end of turn is read. */
const REPLY_MARK = 'r1-assistant-reply';

/** A trajectory row's tokens, pushed as the rollout built them: the prompt (the stage's template;
 * in the chat form with the tools' schemas, as the rollout's prompt had them), then each turn the
 * model wrote, trained, and each tool output after it, in the context but untrained (what the call
 * format appended: the R1 form's output block, the chat form's tool turn), each piece tokenised on
 * its own as the rollout tokenised it; then the chat template's end of turn. */
function trajectoryExample(
  row: { prompt: string; completion: string } & Row,
  turns: TurnRowT[],
  tok: Tokenizer,
  template: string,
  push: (text: string, trained: boolean | 'tool') => void,
  where: string,
): void {
  const own = tok.chatTemplate;
  const chatForm = turns.some((t) => t.call && t.text.trimEnd().endsWith(TOOL_CALL_CLOSE));
  let format: CallFormat = R1_FORMAT;
  let tools: ToolSchema[] | undefined;
  if (chatForm) {
    if (template !== 'chat' || !own)
      throw new UserError(
        `${where}: its turns call tools in the chat form (${TOOL_CALL_CLOSE}), which needs template chat and the model's own chat template (tokenizer_config.json chat_template)`,
      );
    tools = toolSchemas(toolNames(row, turns, where));
    format = chatFormat(own, tools);
  }
  const rendering: OutputRendering = { around: (text) => format.around(text), body: outputBody, truncatedMark: TRUNCATED_MARK };
  const segments: Segment[] = trajectorySegments(row.completion, turns, rendering, where);
  if (template === 'chat') {
    push(applyTemplate('chat', row.prompt, own, tools), false);
    for (const s of segments) push(s.text, s.model || 'tool');
    push(endOfReply(row.prompt, own), true);
  } else {
    push(applyTemplate(template, row.prompt), false);
    for (const s of segments) push(s.text, s.model || 'tool');
  }
}

/** What the chat template writes after an assistant's content to end its turn. */
function endOfReply(prompt: string, own: ChatTemplate | null): string {
  const { reply } = renderReply([{ role: 'user', content: prompt }], { role: 'assistant', content: REPLY_MARK }, own);
  return reply.slice(reply.lastIndexOf(REPLY_MARK) + REPLY_MARK.length);
}

/** The tools whose schemas the chat-form prompt showed: the row's `tools` (names) when it has them,
 * else the tools its calls named, in order of first call. */
function toolNames(row: Row, turns: TurnRowT[], where: string): ToolName[] {
  if (row.tools !== undefined) {
    if (!Array.isArray(row.tools) || !row.tools.every((t) => t === 'python' || t === 'javascript'))
      throw new UserError(`${where}: field 'tools' must be a list of tool names (python, javascript)`);
    return row.tools as ToolName[];
  }
  const named = turns.map((t) => t.call?.tool).filter((t): t is ToolName => t === 'python' || t === 'javascript');
  return [...new Set(named)];
}

export async function runSft(ctx: StageContext, s: SftStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const tok = ctx.tokenizer;
  const model = ctx.loadModel();
  const maxLen = Math.min(s.max_length ?? Infinity, model.config.max_position_embeddings + 1);
  let examples = rows.map((r, i) => {
    const e = sftExample(r, tok, s.template, s.completion_only_loss, `stage '${s.name}', row ${i + 1}`);
    return { ids: e.ids.slice(0, maxLen), weights: e.weights.slice(0, maxLen) };
  });
  if (s.packing) examples = pack(examples, maxLen);
  const B = s.per_device_train_batch_size;
  const steps = totalSteps(s.max_steps, s.num_train_epochs, examples.length, B * s.gradient_accumulation_steps);
  const result = await trainLoop(stageTrainOptions(ctx, s, model, steps, s.train_workers), {
    microBatches: (step) =>
      lmStep(
        Array.from({ length: s.gradient_accumulation_steps }, (_, micro) =>
          batchIndices(step * s.gradient_accumulation_steps + micro, B, examples.length, ctx.recipe.seed).map((i) => examples[i]),
        ),
        tok.padId,
      ),
  });
  model.dispose();
  return {
    checkpoint: `${ctx.stageDir}/checkpoint`,
    summary: { final_loss: +result.finalLoss.toFixed(4), steps: result.steps, examples: examples.length },
  };
}

/** Greedy packing (TRL's padding-free packing with position ids): concatenates examples, in order,
 * into sequences of at most maxLen tokens, each token tagged with its example's index in the
 * sequence. padBatch turns the tags into positions restarting at 0 per example and a document mask:
 * no token attends across examples, and no example's last token is trained to predict the next
 * one's first, so a packed example trains as it would alone, with less padding. */
export function pack(examples: WeightedSequence[], maxLen: number): WeightedSequence[] {
  const out: WeightedSequence[] = [];
  let cur: Required<WeightedSequence> = { ids: [], weights: [], documents: [] };
  let doc = 0;
  for (const e of examples) {
    if (cur.ids.length && cur.ids.length + e.ids.length > maxLen) {
      out.push(cur);
      cur = { ids: [], weights: [], documents: [] };
      doc = 0;
    }
    cur.ids.push(...e.ids);
    cur.weights.push(...e.weights);
    cur.documents.push(...e.ids.map(() => doc));
    doc++;
  }
  if (cur.ids.length) out.push(cur);
  return out;
}
