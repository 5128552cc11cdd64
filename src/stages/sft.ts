// Supervised fine-tuning on prompt/completion rows or chat rows (`messages`); by default the loss
// covers only completion (assistant) tokens.
import { UserError } from '../errors.ts';
import { applyTemplate, divergence, renderReply, templateName, type ChatMessage } from '../data/chat.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Row, StageContext, StageResult } from './context.ts';
import type { SftStage } from '../recipe/index.ts';
import { trainLoop } from '../train/trainer.ts';
import { batchIndices, lmStep, totalSteps, type WeightedSequence, stageTrainOptions } from './batches.ts';

/** Token ids of one row with weight 1 on the tokens the loss covers. */
export function sftExample(row: Row, tok: Tokenizer, template: string, completionOnly: boolean, where: string): WeightedSequence {
  const ids: number[] = [],
    weights: number[] = [];
  const push = (text: string, trained: boolean) => {
    for (const id of tok.encode(text)) {
      ids.push(id);
      weights.push(trained || !completionOnly ? 1 : 0);
    }
  };
  const own = tok.chatTemplate;
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
