// Multi-turn trajectories as training data. A rejection-sampling row with tools keeps the whole
// trajectory as its `completion` (the model's turns with the tool outputs appended between them) and
// its `turns` (what the model wrote, and the call each turn ended with). Training on such a row must
// keep the tool output in the context but take no loss on it (as GRPO does, rl/tool-mask.ts): the
// tool output is not the model's writing. This file cuts the completion back into the model's spans
// and the tool's spans, the tool's spans rebuilt with the call format's own rendering (the one the
// rollout appended), so each span is exactly the text the rollout tokenised on its own.
import { z } from 'zod';
import { UserError } from '../errors.ts';

export const ToolCallRow = z
  .object({
    tool: z.string().describe('the tool the call named'),
    code: z.string().describe('the code the model wrote'),
    output: z.string().describe('what the call printed'),
    error: z.string().nullable().describe('the error message the model saw, null when the call ran normally'),
  })
  .describe('a tool call a turn ended with');

export const TurnRow = z
  .object({
    text: z.string().describe('what the model wrote in this turn'),
    call: ToolCallRow.nullable().describe('the tool call the turn ended with; null: the turn ended otherwise'),
  })
  .describe('one turn of a trajectory, as rejection sampling writes it (rewards/types.ts Turn)');

export const TurnsRow = z.array(TurnRow).min(1).describe("a trajectory's turns, in order");

export type TurnRowT = z.infer<typeof TurnRow>;

/** A piece of a trajectory's text: the model's (trained) or a tool's (context only). */
export type Segment = { text: string; model: boolean };

/** How a call format writes a call's output after the turn that made it (rollout/multi-turn.ts
 * CallFormat.around and outputBody, passed in so this file needs no rollout code). */
export type OutputRendering = {
  /** The text around the output after a turn with this text. */
  around(turnText: string): { open: string; close: string };
  /** The output's body as the model saw it (output, then error). */
  body(call: NonNullable<TurnRowT['call']>): string;
  /** What follows the kept part of an output cut to the token limit. */
  truncatedMark: string;
};

/** The turns of a row, validated; null when the row has none. `where` names the row in errors. */
export function rowTurns(row: Record<string, unknown>, where: string): TurnRowT[] | null {
  if (row.turns === undefined || row.turns === null) return null;
  const parsed = TurnsRow.safeParse(row.turns);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`${where}: field 'turns${issue.path.map((p) => `[${JSON.stringify(p)}]`).join('')}': ${issue.message}`);
  }
  return parsed.data;
}

/** The tool text after a call at the start of `rest`: the rendering's full output block, or the block
 * with its output cut to the token limit; at the end of the trajectory (the length budget ran out
 * inside the block), whatever of it is there. Null when `rest` does not begin with either. */
function toolText(rest: string, turnText: string, call: NonNullable<TurnRowT['call']>, r: OutputRendering, last: boolean): string | null {
  const { open, close } = r.around(turnText);
  const body = r.body(call);
  const full = open + body + close;
  if (rest.startsWith(full)) return full;
  if (rest.startsWith(open)) {
    const end = rest.indexOf(r.truncatedMark + close, open.length);
    // The kept part decodes a prefix of the body's tokens: a prefix of the body, but for a character
    // whose bytes the cut split (decoded as U+FFFD).
    const kept = end < 0 ? null : rest.slice(open.length, end).replace(/\uFFFD+$/, '');
    if (kept !== null && body.startsWith(kept)) return rest.slice(0, end + r.truncatedMark.length + close.length);
  }
  if (last && (full.startsWith(rest) || rest.startsWith(open))) return rest;
  return null;
}

/** The completion of a row with turns cut into the model's turns and the tool outputs between them.
 * The pieces join back into the completion exactly; where they cannot (the completion is not the
 * turns and their outputs as `rendering` writes them), an error names the row and the turn. */
export function trajectorySegments(completion: string, turns: readonly TurnRowT[], rendering: OutputRendering, where: string): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  turns.forEach((turn, i) => {
    if (!completion.startsWith(turn.text, at))
      throw new UserError(
        `${where}: turns[${i}].text is not the completion's text at character ${at} (${JSON.stringify(completion.slice(at, at + 40))}): the completion must be the turns with their tool outputs between them`,
      );
    out.push({ text: turn.text, model: true });
    at += turn.text.length;
    if (!turn.call) return;
    const last = i === turns.length - 1;
    const tool = toolText(completion.slice(at), turn.text, turn.call, rendering, last);
    if (tool === null)
      throw new UserError(
        `${where}: the output of turns[${i}].call is not written after the turn as the call format writes it (at character ${at}: ${JSON.stringify(completion.slice(at, at + 40))})`,
      );
    out.push({ text: tool, model: false });
    at += tool.length;
  });
  if (at !== completion.length)
    throw new UserError(
      `${where}: the completion goes on after its last turn (${JSON.stringify(completion.slice(at, at + 40))}): the completion must be the turns with their tool outputs between them`,
    );
  return out.filter((s) => s.text.length > 0);
}
