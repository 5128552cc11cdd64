// Micro model configs the model-level tests share (LoRA, bf16 frozen weights, activation
// checkpointing): one of each block family at a size that runs in milliseconds; and the trainer's
// settings the training-loop tests start from.
import type { ModelConfig } from '../src/model/config.ts';
import type { TrainingConfig } from '../src/train/trainer.ts';

/** Llama layout, tied embeddings, grouped-query attention (4 query heads over 2 key-value heads). */
export const LLAMA_MICRO: ModelConfig = {
  vocab_size: 40,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 24,
  max_position_embeddings: 32,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

/** Qwen2 layout (q/k/v biases), untied output layer. */
export const QWEN2_MICRO: ModelConfig = { ...LLAMA_MICRO, model_type: 'qwen2', tie_word_embeddings: false };

/** deepseek_v3 with q compression, a dense first layer then MoE (8 experts in 4 groups, 1 shared), and MTP. */
export const DEEPSEEK_MICRO = {
  model_type: 'deepseek_v3',
  vocab_size: 40,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 48,
  max_position_embeddings: 64,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  q_lora_rank: 16,
  kv_lora_rank: 12,
  qk_nope_head_dim: 8,
  qk_rope_head_dim: 8,
  v_head_dim: 8,
  first_k_dense_replace: 1,
  n_routed_experts: 8,
  n_shared_experts: 1,
  moe_intermediate_size: 16,
  num_experts_per_tok: 2,
  n_group: 4,
  topk_group: 2,
  routed_scaling_factor: 2.5,
  num_nextn_predict_layers: 1,
} as ModelConfig;

/** AdamW at a constant rate, no warmup or decay, clipping at 1, a row logged every step: the training
 * loop's settings the loop tests start from (each overrides what it is about). */
export function trainingConfig(overrides: Partial<TrainingConfig> = {}): TrainingConfig {
  return {
    learning_rate: 1e-2,
    lr_scheduler_type: 'constant',
    warmup_steps: 0,
    warmup_ratio: 0,
    gradient_accumulation_steps: 1,
    max_grad_norm: 1,
    weight_decay: 0,
    adam_beta1: 0.9,
    adam_beta2: 0.95,
    adam_epsilon: 1e-8,
    logging_steps: 1,
    save_steps: 100,
    ...overrides,
  };
}
