// Prompts as the sampling stages (grpo, eval, rejection sampling) feed them to the model.
import { UserError } from '../errors.ts';
import { applyTemplate } from '../data/chat.ts';
import type { ChatTemplate, ToolSchema } from '../model/chat-template.ts';
import type { Row } from './context.ts';
import { documentIds } from './batches.ts';

export type EncodedPrompt = { text: string; ids: number[]; row: Row };

/** Where the rows come from and what sets the prompt field, for the error messages: a recipe stage
 * (the default: `stage 'x'`, the prompt_field field) or a command (its file and its flags). */
export type PromptSource = { where?: string; promptFieldHint?: string; newTokensHint?: string };

/** Each row's prompt through the template (with `tools`, the tool schemas the chat form renders
 * into it), tokenized. Too long for `room` tokens of context: an error naming the stage, the row and
 * the fields to change. */
export function encodePrompts(
  rows: Row[],
  s: { name: string; template: string; prompt_field: string; source?: PromptSource },
  tok: { documentStart: readonly number[]; chatTemplate: ChatTemplate | null; encode(t: string): number[] },
  room: { context: number; newTokens: number; newTokensField: string },
  tools?: readonly ToolSchema[],
): EncodedPrompt[] {
  const where = s.source?.where ?? `stage '${s.name}'`;
  const fieldHint = s.source?.promptFieldHint ?? 'set prompt_field';
  return rows.map((row, i) => {
    const p = row[s.prompt_field];
    if (typeof p !== 'string') throw new UserError(`${where}, row ${i + 1}: no string field '${s.prompt_field}' (${fieldHint})`);
    const text = applyTemplate(s.template, p, tok.chatTemplate, tools);
    const ids = documentIds(tok, text);
    if (ids.length + room.newTokens > room.context) {
      throw new UserError(
        `${where}, row ${i + 1}: the prompt is ${ids.length} tokens with template '${s.template.slice(0, 40)}', and with ` +
          `${s.source?.newTokensHint ?? room.newTokensField} ${room.newTokens} it exceeds the model's context of ${room.context} (max_position_embeddings)`,
      );
    }
    return { text, ids, row };
  });
}
