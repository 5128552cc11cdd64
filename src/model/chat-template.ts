// A model's own chat template: the Jinja `chat_template` of its tokenizer_config.json (or the
// chat_template.jinja file that newer transformers versions write beside it), rendered with
// @huggingface/jinja the way transformers' `apply_chat_template` renders it.
import { Template } from '@huggingface/jinja';
import { UserError } from '../errors.ts';

export type ChatMessage = { role: 'system' | 'user' | 'assistant' | 'tool' | string; content: string };

/** A tool as chat templates take it in their `tools` argument (an OpenAI-style function schema). */
export type ToolSchema = { type: 'function'; function: { name: string; description: string; parameters: Record<string, unknown> } };

/** tokenizer_config.json fields that transformers hands to the template as strings (its
 * `special_tokens_map`); an AddedToken object stands for its content. */
const SPECIAL_TOKEN_FIELDS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** The text of a special-token field of tokenizer_config.json: a string, or an AddedToken object's content. */
export function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string')
    return (value as { content: string }).content;
  return undefined;
}

export class ChatTemplate {
  private compiled: Template | undefined;
  private readonly specialTokens: Record<string, string | string[]> = {};

  /** source: the file the template comes from, named in errors; config: tokenizer_config.json. */
  constructor(
    readonly source: string,
    private readonly text: string,
    config: Record<string, unknown>,
  ) {
    for (const field of SPECIAL_TOKEN_FIELDS) {
      const content = tokenContent(config[field]);
      if (content !== undefined) this.specialTokens[field] = content;
    }
    if (Array.isArray(config.additional_special_tokens)) {
      this.specialTokens.additional_special_tokens = config.additional_special_tokens.map(tokenContent).filter((t) => t !== undefined);
    }
  }

  /** The conversation as the model reads it; with addGenerationPrompt, followed by what opens the
   * assistant's reply. Parsed on first use, so a template this Jinja cannot read only stops the
   * recipes that use it. */
  render(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean; tools?: readonly ToolSchema[] }): string {
    try {
      this.compiled ??= new Template(this.text);
      return this.compiled.render({
        ...this.specialTokens,
        messages,
        add_generation_prompt: opts.addGenerationPrompt,
        ...(opts.tools ? { tools: opts.tools } : {}),
      });
    } catch (e) {
      throw new UserError(`${this.source}: the chat template failed to render: ${(e as Error).message}`);
    }
  }
}
