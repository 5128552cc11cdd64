// What the recipe loader asks of the model room, in one small seam: whether a recipe's model fields
// fit together (the owner's rules, with the field each problem is about), and how an hf: model name
// resolves. recipe/ imports this file, never the model's internals.
import { type ModelConfig, deepseekProblems, strayDeepseekFields } from './config.ts';

export { isHubName, locateHubModel } from './hub.ts';
export { LoraConfig } from './lora.ts';
export type { ModelConfig } from './config.ts';

/** Problems of a recipe's model: fields (under model.) and why. */
export function modelFieldProblems(model: ModelConfig): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  const add = (field: string, message: string) => out.push({ field, message });
  if (model.model_type === 'deepseek_v3') {
    // MLA's head sizes are explicit: the deepseek_v3 checks instead (each message names its field).
    for (const problem of deepseekProblems(model, 'model')) {
      const field = /^model\.(\w+)/.exec(problem)?.[1] ?? 'model_type';
      add(field, problem.replace(/^model\.\w+\s*/, ''));
    }
    return out;
  }
  const stray = strayDeepseekFields(model);
  if (stray.length) add(stray[0], `belongs to model_type deepseek_v3 (set model_type: deepseek_v3, or remove ${stray.join(', ')})`);
  if (model.hidden_size % model.num_attention_heads !== 0)
    add('hidden_size', `must be divisible by num_attention_heads (${model.num_attention_heads})`);
  else if ((model.hidden_size / model.num_attention_heads) % 2 !== 0)
    add('hidden_size', 'hidden_size / num_attention_heads must be even (rotary embeddings)');
  if (model.num_attention_heads % model.num_key_value_heads !== 0)
    add('num_key_value_heads', `must divide num_attention_heads (${model.num_attention_heads})`);
  return out;
}
