// Chat and prompt templates. The chat template marks roles with special tokens, which the tokenizer
// maps to single ids; the named prompt templates wrap a bare prompt (R1-Zero's among them).
export type ChatMessage = { role: 'system' | 'user' | 'assistant' | string; content: string };

export const ROLE_TOKENS: Record<string, string> = { system: '<|system|>', user: '<|user|>', assistant: '<|assistant|>' };
export const END_OF_TURN = '<|end_of_turn|>';

/** `<|role|>content<|end_of_turn|>` per message; with addGenerationPrompt, an opening
 * `<|assistant|>` for the model to continue. */
export function renderChat(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): string {
  let out = '';
  for (const m of messages) {
    const tag = ROLE_TOKENS[m.role];
    if (!tag) throw new Error(`unknown chat role '${m.role}' (valid: ${Object.keys(ROLE_TOKENS).join(', ')})`);
    out += `${tag}${m.content}${END_OF_TURN}`;
  }
  return opts.addGenerationPrompt ? out + ROLE_TOKENS.assistant : out;
}

/** DeepSeek-R1-Zero's training template (Table 1 of the R1 paper). */
export const R1_ZERO_TEMPLATE =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. ' +
  'The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. ' +
  'The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, ' +
  'i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:';

export const TEMPLATES: Record<string, string> = { 'r1-zero': R1_ZERO_TEMPLATE, none: '{prompt}' };

/** The prompt as the model sees it: a named template (r1-zero, chat, none) or a custom string with {prompt}. */
export function applyTemplate(template: string, prompt: string): string {
  if (template === 'chat') return renderChat([{ role: 'user', content: prompt }], { addGenerationPrompt: true });
  const t = TEMPLATES[template] ?? template;
  if (!t.includes('{prompt}')) throw new Error(`template '${template}' is not a known name (${[...Object.keys(TEMPLATES), 'chat'].join(', ')}) and has no {prompt}`);
  return t.split('{prompt}').join(prompt);
}
