// The recipe schema: every field with its type, range, default and a one-line doc, in one place.
// Keys are snake_case and follow TRL / Hugging Face names, so a TRL or open-r1 user knows them.
import { z } from 'zod';
import { LOSS_TYPE_NAMES, LOSS_TYPES } from '../rl/loss-types.ts';
import { ROLLOUT_ENGINE_NAMES, TOOL_FORMATS, TOOL_NAMES } from '../rollout/recipe-check.ts';
import { LoraConfig } from '../model/recipe-check.ts';

export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export const STAGE_TYPES = ['pretrain', 'sft', 'dpo', 'grpo', 'rejection-sampling', 'eval'] as const;
export type StageType = (typeof STAGE_TYPES)[number];
/** Stages whose output is a checkpoint another stage can start from. */
export const CHECKPOINT_STAGES: readonly StageType[] = ['pretrain', 'sft', 'dpo', 'grpo'];
/** Stages whose output is a dataset another stage can read. */
export const DATASET_STAGES: readonly StageType[] = ['rejection-sampling'];

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;
const SAFE_NAME_MSG = 'use letters, digits, ".", "_" and "-" only';
const int = () => z.number().int();
const prob = () => z.number().min(0).max(1);

export const ModelConfig = z
  .strictObject({
    vocab_size: int().min(0).default(512).describe("vocabulary size; must equal the tokenizer's, 0 = take it from the tokenizer"),
    hidden_size: int().positive().default(128).describe('width of the residual stream (d_model)'),
    num_hidden_layers: int().positive().default(4).describe('number of transformer blocks'),
    num_attention_heads: int().positive().default(4).describe('query heads per attention layer'),
    num_key_value_heads: int().positive().default(2).describe('key/value heads (grouped-query attention); divides num_attention_heads'),
    intermediate_size: int().positive().default(352).describe('hidden width of the SwiGLU feed-forward'),
    max_position_embeddings: int().positive().default(256).describe('longest sequence the model handles (context length)'),
    rope_theta: z.number().positive().default(10000).describe('base of the rotary position embedding frequencies'),
    rms_norm_eps: z.number().positive().default(1e-6).describe('epsilon of RMSNorm'),
    tie_word_embeddings: z.boolean().default(true).describe('share the input embedding with the output projection'),
    // DeepSeek-V3 (model_type deepseek_v3; DeepseekV3Config names). Left out: the dense llama model.
    model_type: z
      .enum(['llama', 'deepseek_v3'])
      .optional()
      .describe('llama (default) or deepseek_v3: MLA, DeepSeekMoE and multi-token prediction (the fields below)'),
    q_lora_rank: int()
      .positive()
      .nullable()
      .optional()
      .describe('deepseek_v3 MLA: rank of the query compression (null or absent: one q projection)'),
    kv_lora_rank: int()
      .positive()
      .optional()
      .describe('deepseek_v3 MLA: rank of the shared key/value latent, what the KV cache keeps per token'),
    qk_nope_head_dim: int().positive().optional().describe('deepseek_v3 MLA: per-head query/key size without rotation'),
    qk_rope_head_dim: int()
      .positive()
      .optional()
      .describe('deepseek_v3 MLA: per-head rotated query size, and the one rope key shared by all heads (even)'),
    v_head_dim: int().positive().optional().describe('deepseek_v3 MLA: per-head value size'),
    first_k_dense_replace: int()
      .min(0)
      .optional()
      .describe('deepseek_v3: the first layers with a dense SwiGLU (intermediate_size); the rest are MoE (default 1)'),
    n_routed_experts: int().positive().optional().describe('deepseek_v3 MoE: routed experts per MoE layer'),
    n_shared_experts: int().min(0).optional().describe('deepseek_v3 MoE: always-on shared experts (default 1)'),
    moe_intermediate_size: int().positive().optional().describe('deepseek_v3 MoE: hidden width of each expert'),
    num_experts_per_tok: int().positive().optional().describe('deepseek_v3 MoE: routed experts per token'),
    n_group: int().positive().optional().describe('deepseek_v3 MoE: expert groups for group-limited routing (default 1)'),
    topk_group: int().positive().optional().describe('deepseek_v3 MoE: groups a token may route into (default 1)'),
    norm_topk_prob: z.boolean().optional().describe('deepseek_v3 MoE: normalise the chosen gates to sum 1 (default true)'),
    routed_scaling_factor: z.number().positive().optional().describe("deepseek_v3 MoE: factor on the routed experts' gates (default 1)"),
    num_nextn_predict_layers: int().min(0).max(1).optional().describe('deepseek_v3: multi-token prediction modules, 0 or 1 (default 0)'),
    aux_loss_alpha: z.number().min(0).optional().describe('deepseek_v3 MoE: weight of the sequence-wise balance loss (default 0.0001)'),
    mtp_loss_weight: z.number().min(0).optional().describe('deepseek_v3: weight of the MTP cross-entropy in training losses (default 0.3)'),
  })
  .describe('the architecture for stages that start from scratch (Hugging Face Llama / DeepseekV3 config names)');

/** ModelConfig without its defaults: an init_config holds only the fields it changes, the rest come
 * from the recipe's model (a plain .partial() would fill in the defaults and override them all). */
const InitConfig = z.strictObject(
  Object.fromEntries(
    Object.entries(ModelConfig.shape).map(([k, v]) => [
      k,
      v
        .unwrap()
        .optional()
        .describe(v.description ?? ''),
    ]),
  ) as {
    [K in keyof typeof ModelConfig.shape]: z.ZodOptional<ReturnType<(typeof ModelConfig.shape)[K]['unwrap']>>;
  },
);

export const TokenizerConfig = z
  .strictObject({
    path: z
      .string()
      .nullable()
      .default(null)
      .describe("a tokenizer.json file or a directory holding one; null = train one (or take the checkpoint's)"),
    train: z
      .strictObject({
        datasets: z.array(z.string()).min(1).default(['data/corpus.jsonl']).describe('text files to learn the byte-level BPE merges from'),
        vocab_size: int().min(259).default(512).describe('vocabulary size including the 256 bytes and the special tokens'),
        text_field: z.string().default('text').describe('field of each row that holds the text'),
        split_cjk: z
          .boolean()
          .default(false)
          .describe(
            'make every Chinese character its own pre-token (as BERT does), so merges never join characters into phrases; for small models on Chinese text',
          ),
      })
      .nullable()
      .default(null)
      .describe('train a byte-level BPE tokenizer on these datasets (null = do not)'),
  })
  .describe('either a path to a tokenizer.json/dir, or train one');

export const RewardSpec = z.strictObject({
  name: z
    .string()
    .min(1)
    .describe('a built-in reward (accuracy, format, language, code, length, repetition) or a path to a .ts/.js module'),
  weight: z.number().default(1).describe('weight of this reward in the summed reward'),
  options: z.record(z.string(), z.unknown()).default({}).describe('options passed to the reward function'),
});
export type RewardSpec = z.infer<typeof RewardSpec>;

const rewards = (names: string[], doc: string) =>
  z
    .array(RewardSpec)
    .min(1, 'needs at least one reward function')
    .default(names.map((name) => ({ name, weight: 1, options: {} })))
    .describe(doc);

const TEMPLATE_DOC =
  "prompt template: r1-zero | chat (the model's own Jinja chat_template when its tokenizer_config.json has one, else r1kit's built-in chat format) | none, or a custom string containing {prompt}";
const template = (def: string) => z.string().min(1).default(def).describe(TEMPLATE_DOC);

/** Fields every stage has. */
const stageBase = <T extends StageType>(type: T) => ({
  name: z.string().regex(SAFE_NAME, SAFE_NAME_MSG).optional().describe('unique stage name, also its folder under the run; default = type'),
  type: z.literal(type).describe(`stage type: ${STAGE_TYPES.join(' | ')}`),
  model: z
    .string()
    .nullable()
    .default(null)
    .describe(
      'where the weights come from: null = the previous stage (fresh init for the first), a stage name, "init", a checkpoint directory (Hugging Face layout: llama, qwen2, qwen3), or hf:<org>/<name>[@revision] from the local Hugging Face cache',
    ),
  datasets: z
    .array(z.string())
    .default([])
    .describe('dataset files (.jsonl/.json/.parquet) or names of earlier stages whose output dataset to read'),
  max_samples: int().positive().nullable().default(null).describe('use at most this many rows of the datasets (null = all)'),
  init_config: InitConfig.nullable()
    .default(null)
    .describe('architecture changes for a stage that starts from a fresh init (model: init), e.g. a smaller student to distill into'),
});

/** Optimiser, schedule and bookkeeping fields of the training stages. */
const training = (d: { lr: number; scheduler: string; warmupRatio: number; maxSteps: number; batch: number }) => ({
  learning_rate: z.number().positive().default(d.lr).describe('peak learning rate'),
  lr_scheduler_type: z
    .enum(['multistep', 'cosine', 'constant', 'linear'])
    .default(d.scheduler as 'linear')
    .describe('after warmup: multistep (DeepSeek LLM: 31.6% at 80%, 10% at 90% of steps), cosine, constant or linear decay'),
  warmup_steps: int().min(0).default(0).describe('linear warmup steps from 0 to the peak learning rate (overrides warmup_ratio)'),
  warmup_ratio: prob().default(d.warmupRatio).describe('warmup as a share of all steps, used when warmup_steps is 0'),
  max_steps: int()
    .min(-1)
    .refine((v) => v !== 0, 'must be -1 or positive')
    .default(d.maxSteps)
    .describe('optimiser steps to run; -1 = as many as num_train_epochs gives'),
  per_device_train_batch_size: int().positive().default(d.batch).describe('sequences per micro-batch'),
  gradient_accumulation_steps: int().positive().default(1).describe('micro-batches summed into one optimiser step'),
  max_grad_norm: z.number().min(0).default(1).describe('clip the global gradient norm to this (0 = no clipping)'),
  weight_decay: z.number().min(0).default(0.1).describe('AdamW decoupled weight decay'),
  adam_beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW beta1'),
  adam_beta2: z.number().min(0).lt(1).default(0.95).describe('AdamW beta2'),
  adam_epsilon: z.number().positive().default(1e-8).describe('AdamW epsilon'),
  logging_steps: int().positive().default(1).describe('log metrics every N optimiser steps'),
  save_steps: int().positive().default(100).describe('write a checkpoint every N optimiser steps (and always at the end)'),
  bias_update_speed: z
    .number()
    .min(0)
    .optional()
    .describe(
      "MoE models (deepseek_v3): DeepSeek-V3's auxiliary-loss-free balancing - after every optimiser update each routed expert's selection bias moves by -speed x sign(its load - its layer's mean load) over the update's tokens (the bias steers the choice only, never the gate values); 0 = off. Default and DeepSeek-V3's value: 0.001",
    ),
  gradient_checkpointing: z
    .boolean()
    .default(false)
    .describe(
      "activation checkpointing per layer: each decoder layer keeps only its input for the backward pass, which recomputes the layer's forward. Costs about one extra forward pass per step (roughly a third more training compute); the activations part of the memory plan drops from every layer's intermediates to one layer's plus each layer's input. Turn it on when the plan names activations (long sequences, many layers, big micro-batches). deepseek_v3's MoE layers are not recomputed",
    ),
  train_workers: z
    .union([z.literal('auto'), int().positive()])
    .default('auto')
    .describe(
      'threads computing gradients data-parallel (pretrain, sft, grpo); 1 = the main thread alone, auto = one per core on wasm and cpu, one on webgpu and tensorflow (which use the GPU or every core themselves)',
    ),
});

/** A held-out loss during training (Hugging Face's eval_dataset / eval_steps / eval_loss). */
const heldOut = () => ({
  eval_datasets: z
    .array(z.string())
    .default([])
    .describe(
      "held-out dataset files (or earlier stages' datasets), read as the stage reads its own; their mean next-token loss is logged as eval/loss every " +
        'eval_steps and at the end, and kept in the summary as eval_loss. Forward passes only, and the next-token loss alone (no MTP or balance terms), so it ' +
        'compares across architectures. Empty = no evaluation. Recommended: a few hundred rows the stage does not train on (data/r1/heldout.jsonl)',
    ),
  eval_steps: int()
    .positive()
    .nullable()
    .default(null)
    .describe(
      'evaluate eval_datasets every N optimiser steps and at the last (those steps are logged whatever logging_steps says); null = every save_steps',
    ),
});

const epochs = (def: number) => ({
  num_train_epochs: z.number().positive().default(def).describe('passes over the dataset (when max_steps is -1)'),
});

const generation = (d: { temperature: number; topP: number }) => ({
  temperature: z.number().min(0).default(d.temperature).describe('sampling temperature (0 = greedy)'),
  top_p: z.number().gt(0).max(1).default(d.topP).describe('nucleus sampling: keep the smallest set of tokens with this total probability'),
  top_k: int().min(0).default(0).describe('sample among the k most likely tokens (0 = all)'),
  stop: z.array(z.string()).default([]).describe('strings that end a completion (kept in the text)'),
});

export const PretrainStage = z.strictObject({
  ...stageBase('pretrain'),
  ...training({ lr: 1e-3, scheduler: 'multistep', warmupRatio: 0.05, maxSteps: 1000, batch: 16 }),
  ...epochs(1),
  ...heldOut(),
  text_field: z.string().default('text').describe('field of each row that holds the text'),
  seq_length: int().positive().default(128).describe('tokens per packed training sequence'),
});

export const SftStage = z.strictObject({
  ...stageBase('sft'),
  lora: LoraConfig.optional(),
  ...training({ lr: 2e-5, scheduler: 'linear', warmupRatio: 0, maxSteps: -1, batch: 8 }),
  ...epochs(3),
  max_length: int().positive().nullable().default(null).describe('truncate sequences to this many tokens (null = the model context)'),
  packing: z
    .boolean()
    .default(false)
    .describe(
      'pack consecutive examples into sequences of up to max_length tokens (less padding), as TRL padding-free packing with position ids: each example keeps its own ' +
        "positions (from 0) and attends only within itself, and its last token is not trained to predict the next example's first, so the loss is the unpacked one. " +
        'Packed batches take the composed attention path (the fused WebAssembly kernels take no mask): worth it when examples are much shorter than max_length',
    ),
  completion_only_loss: z.boolean().default(true).describe('loss on completion (assistant) tokens only, not on the prompt'),
  template: template('chat'),
});

export const DpoStage = z.strictObject({
  ...stageBase('dpo'),
  lora: LoraConfig.optional(),
  ...training({ lr: 1e-6, scheduler: 'linear', warmupRatio: 0, maxSteps: -1, batch: 8 }),
  ...epochs(1),
  beta: z.number().positive().default(0.1).describe('strength of the implicit KL to the reference model'),
  loss_type: z
    .enum(['sigmoid', 'ipo'])
    .default('sigmoid')
    .describe(
      'preference loss on the margin h = (log pi_c - log ref_c) - (log pi_r - log ref_r): sigmoid (DPO) -log sigmoid(beta h) with log-probs summed over the ' +
        "response's tokens; ipo (h - 1/(2 beta))^2 with log-probs averaged over the response's tokens (TRL's length normalisation). Recommended sigmoid",
    ),
  max_prompt_length: int()
    .positive()
    .nullable()
    .default(512)
    .describe(
      'a longer prompt is cut from the LEFT to its last N tokens (its end, next to the reply, is kept; so is the document start / BOS in front), as TRL; ' +
        'null = no limit of its own (max_length still applies). Rows cut are counted in the summary (truncated_prompts). Recommended 512 (TRL), about half of max_length',
    ),
  max_length: int()
    .positive()
    .nullable()
    .default(null)
    .describe(
      "most tokens of prompt + reply (null = the model context): each reply's end is cut to fit (TRL truncation_mode keep_start); a prompt that would leave no " +
        'reply token is cut further from the left so chosen and rejected keep at least one token each (never a pair that trains nothing); must be >= 2. Recommended 1024 (TRL)',
    ),
  template: template('chat'),
});

/** A sampling stage's tools (grpo, eval, rejection-sampling): multi-turn generation through one runner (rollout/multi-turn.ts). */
const ToolsField = z
  .strictObject({
    names: z
      .array(z.enum(TOOL_NAMES))
      .min(1)
      .default(['python'])
      .describe(
        'tools the model may call; in the r1 form <code> runs the first, <code lang="javascript"> names another. Each runs in the sandbox with all its walls',
      ),
    max_turns: int().positive().default(4).describe('tool calls per trajectory at most; after them a </code> no longer stops generation'),
    max_output_tokens: int()
      .positive()
      .default(128)
      .describe("tokens of a call's output appended to the context at most (the rest is cut, marked ...(truncated))"),
    timeout_s: z
      .number()
      .positive()
      .default(2)
      .describe(
        "CPU-time limit of one call (the session's earlier cells re-run included); a call past it gets a timeout error in its output",
      ),
    format: z
      .enum(TOOL_FORMATS)
      .default('r1')
      .describe(
        'r1: the model writes <code>...</code>, generation stops there, the code runs and <output>...</output> is appended (models r1kit trains); chat: Hugging Face models, the tools given to the chat template\'s `tools` argument, calls as <tool_call>{"name": ..., "arguments": {"code": ...}}</tool_call> (Qwen2.5, Qwen3, Hermes), outputs as tool-role messages rendered by the template; needs template: chat',
      ),
    environment: z
      .string()
      .nullable()
      .default(null)
      .describe(
        "a user module answering the calls instead of the sandbox, by path like a reward (./my-env.ts#Calculator): a class or object with step(state, call) -> observation; state is the trajectory's own object; r1 form only",
      ),
  })
  .nullable()
  .default(null)
  .describe(
    'multi-turn rollouts with tool calls (tool-integrated reasoning): the model runs code mid-reasoning and sees its output; max_completion_length (eval and rejection-sampling: max_new_tokens) bounds the whole trajectory, tool output included. ' +
      'In GRPO, tool-output tokens are in the context of every forward pass but carry no loss, KL or entropy and do not count in the normalisers, and turns are sampled on the main thread (rollout_workers 0 or auto) by tfjs or llama.cpp; with a cluster the trainer samples and reward workers run the calls. ' +
      'Eval and rejection sampling run the same loop and record the turns in samples.jsonl; the answer is read from the whole trajectory. null = single-turn',
  );

export const GrpoStage = z.strictObject({
  ...stageBase('grpo'),
  lora: LoraConfig.optional(),
  ...training({ lr: 1e-6, scheduler: 'constant', warmupRatio: 0, maxSteps: 100, batch: 64 }),
  max_steps: int().positive().default(100).describe('optimiser steps to run (each on a fresh batch of rollouts)'),
  per_device_train_batch_size: int()
    .positive()
    .default(64)
    .describe('completions per step (prompts x num_generations); divisible by num_generations'),
  num_generations: int()
    .min(2, 'the group size must be at least 2')
    .default(8)
    .describe('completions sampled per prompt (the group size G)'),
  max_prompt_length: int().positive().default(128).describe('prompts are cut to their last N tokens'),
  max_completion_length: int().positive().default(128).describe('most tokens generated per completion'),
  ...generation({ temperature: 1, topP: 1 }),
  temperature: z
    .number()
    .gt(0, 'GRPO samples: the temperature must be > 0 (greedy decoding has no probabilities to take the ratio of)')
    .default(1)
    .describe('sampling temperature, > 0 (the policy ratio needs sampled log-probs; greedy has none); 1 samples the model as it is'),
  beta: z
    .number()
    .min(0)
    .default(0.04)
    .describe(
      'weight of the KL penalty to the reference model, in the loss (or in the reward with kl_in_reward); 0 = no reference model. DeepSeekMath 0.04; Dr. GRPO and DAPO use 0',
    ),
  kl_estimator: z
    .enum(['k1', 'k2', 'k3'])
    .default('k3')
    .describe(
      'per-token KL(pi || pi_ref) estimate from d = log pi - log pi_ref: k1 = d, k2 = d^2 / 2, k3 = exp(-d) - 1 + d (unbiased, >= 0; DeepSeekMath). Recommended k3 in the loss, k1 in the reward',
    ),
  kl_in_reward: z
    .boolean()
    .default(false)
    .describe(
      "subtract beta x the completion's summed KL estimate (sampling policy vs reference) from its reward before the advantages, instead of a KL term in the loss (RLOO, REINFORCE++ style)",
    ),
  advantage_estimator: z
    .enum(['grpo', 'rloo', 'reinforce_pp'])
    .default('grpo')
    .describe(
      "a completion's advantage from the rewards: grpo (r - group mean) / scale; rloo (r - mean of the group's other G - 1 rewards) / scale, the leave-one-out baseline (TRL's RLOO: with scale_rewards none); " +
        'reinforce_pp (REINFORCE++-baseline) r - group mean, then normalised over the whole batch: (a - mean) / (std + 1e-4), ignoring scale_rewards (see reinforce_pp_whitening). ' +
        "Note: rloo with scale_rewards group is exactly G/(G-1) x grpo's advantage (the same direction, a larger step); set scale_rewards: none for TRL's RLOO. Recommended grpo",
    ),
  reinforce_pp_whitening: z
    .enum(['sequence', 'token'])
    .optional()
    .describe(
      "advantage_estimator reinforce_pp only: whiten over completions (sequence, the default when unset: each completion one value) or over tokens (token, verl's REINFORCE++: " +
        "each completion's value counts once per token, so long completions weigh more in the mean and variance: (a - m) / sqrt(v + 1e-8), unbiased token variance)",
    ),
  epsilon: z
    .number()
    .positive()
    .default(0.2)
    .describe(
      'clip range of the probability ratio: [1 - epsilon, 1 + epsilon_high]. Recommended 0.2 with importance_sampling_level token; with sequence (GSPO) the ' +
        'sequence ratio rarely leaves [0.8, 1.2], so 0.2 almost never clips: GSPO uses epsilon 3e-4 and epsilon_high 4e-4',
    ),
  epsilon_high: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe(
      'upper clip range (DAPO clip-higher, recommended 0.28); null = epsilon. For loss_type cispo it caps the ratio itself (null = 5.0, as ScaleRL recommends)',
    ),
  delta: z
    .number()
    .gt(1, 'delta caps the ratio from above and must be > 1 + epsilon_high to bite; typical 1.5 to 3')
    .nullable()
    .default(null)
    .describe(
      'two-sided clipping (INTELLECT-2): the unclipped ratio in the surrogate is capped at delta, so a negative advantage cannot push a huge ratio without bound; null = off. Recommended > 1 + epsilon_high, e.g. 4',
    ),
  importance_sampling_level: z
    .enum(['token', 'sequence'])
    .default('token')
    .describe(
      "token: one ratio per token (GRPO); sequence: every token of a completion shares exp(mean of its tokens' log-ratios) (GSPO, Zheng et al. 2025; pair it with loss_type grpo " +
        "and GSPO's epsilon 3e-4 / epsilon_high 4e-4: the default 0.2 almost never clips a sequence ratio). The clip_ratio metrics stay token means (each completion counts " +
        'once per token; TRL logs the share of sequences)',
    ),
  num_iterations: int()
    .positive()
    .default(1)
    .describe('optimisation passes over each batch of rollouts (mu); 1 = on-policy, the ratio is 1 and clipping never binds'),
  loss_type: z
    .enum(LOSS_TYPE_NAMES)
    .default('grpo')
    .describe(
      'how token losses are summed and divided, over the whole optimiser step (all its accumulated micro-batches): ' +
        LOSS_TYPE_NAMES.map((t) => LOSS_TYPES[t].doc).join('; '),
    ),
  top_entropy_quantile: z
    .number()
    .gt(0)
    .max(1)
    .default(1)
    .describe(
      "train the policy term only on the top share of tokens by the policy's entropy (the 'forking' tokens; Wang et al. 2025 keep 0.2); the threshold is that quantile of each micro-batch's kept tokens (as TRL), so unlike the rest of the loss it depends on gradient_accumulation_steps. 1 = every token",
    ),
  scale_rewards: z
    .enum(['group', 'batch', 'none'])
    .default('group')
    .describe(
      "divide grpo and rloo advantages by the std of the group, of the batch, or not at all (Dr. GRPO: none; TRL's RLOO: none, as with group rloo is G/(G-1) x grpo)",
    ),
  mask_truncated_completions: z
    .boolean()
    .default(false)
    .describe('no loss on completions that hit max_completion_length (DAPO overlong filtering; they still count as rows)'),
  drop_equal_reward_groups: z
    .boolean()
    .default(false)
    .describe('no loss on groups whose rewards are all equal (zero advantage); see dynamic_sampling to replace them instead'),
  dynamic_sampling: z
    .strictObject({
      max_batches: int()
        .min(2)
        .default(3)
        .describe('most prompt batches sampled per step to fill it; when reached, the step trains on the groups it has'),
    })
    .nullable()
    .default(null)
    .describe(
      'DAPO dynamic sampling: groups whose rewards are all equal (no learning signal) are dropped and more prompts are sampled until the step holds per_device_train_batch_size / num_generations groups that differ; null = off',
    ),
  sync_ref_model: z.boolean().default(false).describe('refresh the reference model from the policy every ref_model_sync_steps (TR-DPO)'),
  ref_model_sync_steps: int().positive().default(512).describe('steps between reference model refreshes (when sync_ref_model)'),
  ref_model_mixup_alpha: prob()
    .default(0.6)
    .describe('a refresh sets ref = alpha x policy + (1 - alpha) x ref; 1 = a hard copy. TRL default 0.6'),
  template: template('r1-zero'),
  prompt_field: z.string().default('prompt').describe('field of each row that holds the prompt'),
  rewards: rewards(['accuracy', 'format'], 'reward functions, summed with their weights'),
  reward_error: z.enum(['fail', 'zero']).default('fail').describe('when a reward function throws: stop the run, or score the completion 0'),
  rollout_workers: z
    .union([z.literal('auto'), int().min(0)])
    .default('auto')
    .describe(
      'worker threads generating rollouts; 0 = the main thread; auto = one per core on the CPU backends, the main thread on a GPU (webgpu, tensorflow: each worker would open the device again with its own copy of the weights)',
    ),
  tools: ToolsField,
  rollout: z
    .strictObject({
      engine: z
        .enum(ROLLOUT_ENGINE_NAMES)
        .default('tfjs')
        .describe(
          'what samples the completions: tfjs (the policy itself, in rollout_workers threads) or llama.cpp (node-llama-cpp fed a GGUF export of the policy at each weight sync; llama, qwen2 and qwen3 models; needs `npm install --save-exact node-llama-cpp@3.21.1`)',
        ),
      device: z
        .enum(['auto', 'cpu', 'vulkan', 'cuda'])
        .default('auto')
        .describe(
          'llama.cpp only: where it runs; auto = CUDA, else Vulkan, else the CPU. cuda needs the NVIDIA driver (CUDA 12), vulkan a Vulkan driver (on a machine without a GPU, Mesa lavapipe with GGML_VK_VISIBLE_DEVICES=0)',
        ),
      is_cap: z
        .number()
        .gt(1)
        .default(2)
        .describe(
          "llama.cpp only: C of the truncated importance-sampling correction of the engine mismatch (TRL's vllm_importance_sampling_cap, verl's rollout correction): " +
            "the trainer recomputes each token's log-prob for the ratio (pi_old = pi_train at sampling time) and multiplies the token's policy loss by w_t = min(pi_train(y_t) / pi_rollout(y_t), C). Recommended 2",
        ),
    })
    .prefault({})
    .describe(
      'the rollout engine; with llama.cpp, GRPO logs rollout_correction/kl (the rollout-vs-train KL, k3 estimate per token), rollout_correction/truncated_frac (share of weights capped at is_cap) and rollout_correction/is_weight_mean',
    ),
});

export const RejectionSamplingStage = z.strictObject({
  ...stageBase('rejection-sampling'),
  num_generations: int().positive().default(4).describe('completions sampled per prompt (k)'),
  max_new_tokens: int().positive().default(128).describe('most tokens generated per completion'),
  ...generation({ temperature: 0.7, topP: 0.95 }),
  template: template('r1-zero'),
  prompt_field: z.string().default('prompt').describe('field of each row that holds the prompt'),
  rewards: rewards(['accuracy'], 'reward functions, summed with their weights, to score each sample'),
  tools: ToolsField,
  reward_threshold: z.number().default(1).describe('keep a sample when its summed reward is at least this'),
  filters: z
    .strictObject({
      language: z
        .string()
        .nullable()
        .default(null)
        .describe(
          "keep only samples whose reasoning is at least 95% in the row's `language` (when it names one) or else this language (en, zh, ...); null = no filter",
        ),
      max_repetition: prob().default(0.5).describe('drop samples whose share of repeated 4-grams exceeds this (1 = off)'),
      min_length: int().min(0).default(1).describe('drop completions shorter than this many tokens'),
      max_length: int().positive().nullable().default(null).describe('drop completions longer than this many tokens (null = no limit)'),
    })
    .prefault({})
    .describe('readability filters applied after the reward threshold'),
  dedupe: z.boolean().default(true).describe('drop samples whose completion repeats one kept for the same prompt'),
  mix: z
    .strictObject({
      datasets: z.array(z.string()).default([]).describe('extra rows (e.g. non-reasoning data) mixed into the output dataset'),
      fraction: prob().default(0).describe('share of the output dataset drawn from mix.datasets'),
    })
    .prefault({})
    .describe('mix rows of other datasets into the output'),
  reward_error: z.enum(['fail', 'zero']).default('fail').describe('when a reward function throws: stop the run, or score the completion 0'),
});

export const EvalStage = z
  .strictObject({
    ...stageBase('eval'),
    num_generations: int()
      .positive()
      .default(4)
      .describe(
        'completions sampled per prompt (n). pass@1 = mean accuracy over the n samples (the unbiased c/n); maj@n = ' +
          'share of prompts whose most common answer is right (answers that verify as equal, e.g. 0.5 and 1/2, are one vote); ' +
          'pass@k is estimated from the n samples. Rows without a reference answer are left out of all three and counted ' +
          'as no_reference. Recommended: 8 or more at temperature > 0 (R1 reports pass@1 over 64 samples), at least 2k for pass@k',
      ),
    pass_at_k: z
      .array(int().min(2, 'pass@1 is always reported: list k >= 2'))
      .optional()
      .describe(
        'k values (2 <= k <= num_generations) of pass@k to report, the chance that at least one of k samples is right, ' +
          'with the unbiased estimator of Chen et al. 2021 (Codex): per prompt with c right of n samples, ' +
          '1 - C(n-c, k)/C(n, k) = 1 - prod_{i=n-c+1..n} (1 - k/i), averaged over the prompts with a reference. ' +
          'Unset = [num_generations] when that is >= 2 (the share of prompts solved at least once). Recommended: k <= n/2 ' +
          '(e.g. num_generations 16, pass_at_k [4, 8]); the estimate gets less noisy as n grows past k',
      ),
    max_new_tokens: int().positive().default(128).describe('most tokens generated per completion'),
    ...generation({ temperature: 0.6, topP: 0.95 }),
    template: template('r1-zero'),
    prompt_field: z.string().default('prompt').describe('field of each row that holds the prompt'),
    rewards: rewards(
      ['accuracy', 'format'],
      'reward functions to score completions; accuracy decides which samples are right (pass@1, maj@n, pass@k; without it the built-in accuracy with its defaults does)',
    ),
    label: z.string().default('').describe('the row name of this eval in the results table'),
    tools: ToolsField,
  })
  .superRefine((s, ctx) => {
    for (const [i, k] of (s.pass_at_k ?? []).entries()) {
      if (k > s.num_generations) {
        ctx.addIssue({
          code: 'custom',
          path: ['pass_at_k', i],
          message: `pass@${k} needs at least ${k} samples per prompt, but num_generations is ${s.num_generations}: raise num_generations or lower k`,
        });
      }
    }
  });

export const Stage = z.discriminatedUnion('type', [PretrainStage, SftStage, DpoStage, GrpoStage, RejectionSamplingStage, EvalStage]);

export const STAGE_SCHEMAS = {
  pretrain: PretrainStage,
  sft: SftStage,
  dpo: DpoStage,
  grpo: GrpoStage,
  'rejection-sampling': RejectionSamplingStage,
  eval: EvalStage,
} as const;

/** Where code-reward programs run (sandbox/launch.ts has the layers). */
export const SandboxConfig = z
  .strictObject({
    isolation: z
      .enum(['strict', 'standard', 'process'])
      .default('standard')
      .describe(
        'walls around the programs code rewards run: every program runs in a separate Node process under its permission model (no file writes, no reads outside its runtime, no processes or threads); ' +
          'standard adds Linux namespaces (bubblewrap: no network, no host paths, no other processes) where the machine allows and says once at start when it cannot; ' +
          'strict refuses to start (exit 2, before any stage) without them; process never uses them. Recommended: strict on machines you set up, standard elsewhere',
      ),
    // The values are sandbox/index.ts REUSES (tests/recipe.test.ts checks they agree).
    reuse: z
      .enum(['distinct', 'never', 'any'])
      .default('distinct')
      .describe(
        'what one sandbox process may run in its life, against a program that broke out of its interpreter and owns its process: ' +
          "distinct (default) never gives a process two programs of the same test, so an owned process has no other program's output to replay and, in GRPO, no sibling of its group to sabotage; " +
          'costs up to G process starts for a group of G programs sharing tests on the first step (then free: the processes are kept, up to workers + 8 per language, ~45 MB each for JavaScript, ~210 MB for Python); ' +
          "never runs one program per process, so a verdict depends on nothing but that program's run; costs a process start per program (~0.15 s of CPU for JavaScript, ~2.5 s for Python: tens to a hundred times slower); " +
          "any has no rule (an owned process can pass a wrong program by replaying another's output); for measuring what the rule costs",
      ),
  })
  .describe('the sandbox that runs model-written code (the code reward)');

/** Rollout and reward workers on other machines over NATS JetStream (src/cluster/). */
export const ClusterConfig = z
  .strictObject({
    url: z
      .string()
      .regex(/^(nats|tls|wss?):\/\//, 'a NATS url such as nats://host:4222')
      .refine(
        (u) => !/^\w+:\/\/[^/]*@/.test(u),
        'no user or password in the url: the recipe is copied into the run folder; use token: env:NAME or R1_CLUSTER_URL',
      )
      .optional()
      .describe(
        'the NATS server (JetStream on); unset = the R1_CLUSTER_URL environment variable; neither = everything in this process (worker threads)',
      ),
    token: z
      .string()
      .regex(
        /^env:[A-Za-z_][A-Za-z0-9_]*$/,
        'name an environment variable (token: env:R1_CLUSTER_TOKEN): a secret in the recipe would be copied into the run folder',
      )
      .optional()
      .describe(
        'env:NAME = the auth token is in environment variable NAME (default R1_CLUSTER_TOKEN when set); never logged or written into the run folder',
      ),
    tls: z
      .union([z.boolean(), z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })])
      .default(false)
      .describe('TLS to the server: true, or files { ca, cert, key } (paths relative to the recipe)'),
    max_staleness: int()
      .min(0)
      .default(0)
      .describe(
        '0 = on-policy (each step waits for its own rollouts); k > 0 = rollouts of step n+k may be generated while step n trains (truncated importance sampling corrects them)',
      ),
    job_timeout_s: z
      .number()
      .positive()
      .default(60)
      .describe(
        'a job not finished (nor kept alive) by a worker within this many seconds goes to another worker; also how soon the trainer says that no worker is alive',
      ),
    max_deliver: int().min(1).default(5).describe('deliveries of one job at most before the run fails naming it'),
    on_no_workers: z
      .enum(['wait', 'fail'])
      .default('wait')
      .describe('no worker alive for a role: wait (saying so every job_timeout_s) or fail (exit non-zero); r1 run --on-no-workers sets it'),
    remote_rewards: z
      .array(z.string())
      .default(['code'])
      .describe(
        'rewards (by name as in the stage) that reward workers compute; the code reward runs model-written programs there, not on the trainer',
      ),
  })
  .describe('several machines: rollout and reward workers (npx r1 worker --connect URL) over NATS JetStream; unset = one process');

export const RecipeSchema = z.strictObject({
  name: z
    .string()
    .regex(SAFE_NAME, SAFE_NAME_MSG)
    .optional()
    .describe('run name; the run folder is <output_dir>/<name>; default = the file name without extension'),
  description: z.string().default('').describe('free text, for people'),
  seed: int().min(0).default(0).describe('seed of every random choice (init, data order, sampling)'),
  backend: z
    .enum(BACKEND_NAMES)
    .default('auto')
    .describe(
      'compute backend: auto (tfjs-node-gpu, WebGPU on a hardware adapter, tfjs-node, wasm, cpu: the first available) | tensorflow | webgpu | wasm | cpu',
    ),
  allow_software_gpu: z
    .boolean()
    .default(false)
    .describe(
      'backend webgpu may run on a software adapter (Mesa llvmpipe, slower than wasm: for testing the GPU path); auto never picks one',
    ),
  output_dir: z.string().default('runs').describe('parent of the run folder, relative to the recipe file'),
  model: ModelConfig.prefault({}),
  tokenizer: TokenizerConfig.prefault({}),
  stages: z.array(Stage).min(1).describe('the stages, run in order'),
  sandbox: SandboxConfig.prefault({}),
  cluster: ClusterConfig.optional(),
  quick: z
    .record(z.string(), z.unknown())
    .default({})
    .describe(
      'overrides for a run of minutes (r1 run --quick): field path (as --set takes; stages by index or name) -> value; a stage set to null is left out (e.g. a pretrain stage, when the others start from a shipped checkpoint); the run is named <name>-quick',
    ),
});

export type ModelConfig = z.infer<typeof ModelConfig>;
export type TokenizerConfig = z.infer<typeof TokenizerConfig>;
export type SandboxConfig = z.infer<typeof SandboxConfig>;
export type ClusterConfig = z.infer<typeof ClusterConfig>;
type WithName<T> = Omit<T, 'name'> & { name: string };
export type PretrainStage = WithName<z.infer<typeof PretrainStage>>;
export type SftStage = WithName<z.infer<typeof SftStage>>;
export type DpoStage = WithName<z.infer<typeof DpoStage>>;
/** epsilon_high is resolved (never null) after loading. */
export type GrpoStage = WithName<Omit<z.infer<typeof GrpoStage>, 'epsilon_high'> & { epsilon_high: number }>;
export type RejectionSamplingStage = WithName<z.infer<typeof RejectionSamplingStage>>;
export type EvalStage = WithName<z.infer<typeof EvalStage>>;
export type Stage = PretrainStage | SftStage | DpoStage | GrpoStage | RejectionSamplingStage | EvalStage;
export type TrainingStage = PretrainStage | SftStage | DpoStage | GrpoStage;

/** A loaded recipe: defaults filled, stage names resolved, plus where it came from. */
export type Recipe = Omit<z.infer<typeof RecipeSchema>, 'stages' | 'name'> & {
  name: string;
  stages: Stage[];
  /** Absolute path of the recipe file ('' when built from an object). */
  file: string;
  /** Directory that relative paths in the recipe are resolved against. */
  recipeDir: string;
};

/** The parts of a zod schema that the --explain table and the typo hints walk (zod 4's `def`). */
export type SchemaNode = {
  description?: string;
  isInt?: boolean;
  shape?: Record<string, SchemaNode>;
  def: {
    type: string;
    innerType?: SchemaNode;
    defaultValue?: unknown;
    element?: SchemaNode;
    options?: SchemaNode[];
    discriminator?: string;
    entries?: Record<string, string>;
    values?: unknown[];
    checks?: { _zod?: { def?: { format?: string } } }[];
  };
};

/** A schema as the walkable node it is at run time (zod's static types hide `def`'s fields). */
export function schemaNode(schema: z.ZodType): SchemaNode {
  return schema as unknown as SchemaNode;
}
