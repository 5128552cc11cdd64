// Chat and prompt templates. `chat` is the model's own chat template when its tokenizer has one
// (tokenizer_config.json's Jinja chat_template), else r1kit's built-in format, which marks roles with
// special tokens that the tokenizer maps to single ids. The named prompt templates wrap a bare prompt
// (R1-Zero's among them).
import { UserError } from '../errors.ts';
import type { ChatMessage, ChatTemplate, ToolSchema } from '../model/chat-template.ts';

export type { ChatMessage } from '../model/chat-template.ts';

export const ROLE_TOKENS: Record<string, string> = { system: '<|system|>', user: '<|user|>', assistant: '<|assistant|>' };
export const END_OF_TURN = '<|end_of_turn|>';

/** The conversation through the model's own template when given, else r1kit's built-in format:
 * `<|role|>content<|end_of_turn|>` per message. With addGenerationPrompt, followed by what opens
 * the assistant's reply for the model to continue. */
export function renderChat(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }, own?: ChatTemplate | null): string {
  if (own) return own.render(messages, opts);
  let out = '';
  for (const m of messages) {
    const tag = ROLE_TOKENS[m.role];
    if (!tag) throw new Error(`unknown chat role '${m.role}' (valid: ${Object.keys(ROLE_TOKENS).join(', ')})`);
    out += `${tag}${m.content}${END_OF_TURN}`;
  }
  return opts.addGenerationPrompt ? out + ROLE_TOKENS.assistant : out;
}

/** An assistant reply as the template writes it after the conversation `before`: `prompt` is that
 * conversation with the generation prompt, `reply` what the template adds after it for the reply
 * (its end of turn included). Training takes the loss on `reply` only, so a template that renders
 * the reply's turn other than as a continuation of the generation prompt is an error rather than
 * a silently shifted loss mask. */
export function renderReply(
  before: readonly ChatMessage[],
  reply: ChatMessage,
  own?: ChatTemplate | null,
): { prompt: string; reply: string } {
  const prompt = renderChat(before, { addGenerationPrompt: true }, own);
  const full = renderChat([...before, reply], { addGenerationPrompt: false }, own);
  if (!full.startsWith(prompt))
    throw new UserError(
      `${templateName(own)} does not write a reply as a continuation of its generation prompt: ${divergence(prompt, full)}`,
    );
  return { prompt, reply: full.slice(prompt.length) };
}

/** The file of the template, or r1kit's format, for errors. */
export function templateName(own?: ChatTemplate | null): string {
  return own ? `the chat template of ${own.source}` : "r1kit's chat format";
}

/** Where a rendering stops being the continuation of an earlier one, for errors. */
export function divergence(before: string, after: string): string {
  let i = 0;
  while (i < before.length && before[i] === after[i]) i++;
  const at = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 30), i + 30));
  return `at character ${i}, ${at(before)} became ${at(after)}`;
}

/** DeepSeek-R1-Zero's training template (Table 1 of the R1 paper). */
export const R1_ZERO_TEMPLATE =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. ' +
  'The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. ' +
  'The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, ' +
  'i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:';

export const TEMPLATES: Record<string, string> = { 'r1-zero': R1_ZERO_TEMPLATE, none: '{prompt}' };

/** The prompt as the model sees it: a named template (r1-zero, chat, none) or a custom string with
 * {prompt}; `chat` is the model's own chat template when given. */
export function applyTemplate(template: string, prompt: string, own?: ChatTemplate | null, tools?: readonly ToolSchema[]): string {
  if (template === 'chat' && tools) {
    // Tool schemas reach the model through its own template's `tools` argument only.
    if (!own)
      throw new UserError(
        "tools with format chat need the model's own chat template (tokenizer_config.json chat_template); r1kit's built-in chat format has no tools",
      );
    return own.render([{ role: 'user', content: prompt }], { addGenerationPrompt: true, tools });
  }
  if (template === 'chat') return renderChat([{ role: 'user', content: prompt }], { addGenerationPrompt: true }, own);
  const t = TEMPLATES[template] ?? template;
  if (!t.includes('{prompt}'))
    throw new Error(`template '${template}' is not a known name (${[...Object.keys(TEMPLATES), 'chat'].join(', ')}) and has no {prompt}`);
  return t.split('{prompt}').join(prompt);
}
