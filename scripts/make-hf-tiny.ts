// Makes a small model directory in Hugging Face layout for recipes/grpo-hf.yaml, since no real weights
// can be downloaded here: the pretrained tiny model (recipes/pretrain-tiny.yaml) saved as a `llama`,
// with a chat template in its tokenizer_config.json (r1kit's role tokens, as an instruct model has its
// own) and the end-of-turn token among the EOS ids of generation_config.json. The directory is what
// `huggingface-cli download` would give for a real model: point the recipe at one instead.
//
//   npx r1 run recipes/pretrain-tiny.yaml      # once, ~12 min on 2 cores
//   npx tsx scripts/make-hf-tiny.ts [--from runs/pretrain-tiny/pretrain/checkpoint] [--out runs/hf-tiny]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/engine/backend.ts';
import { copyCompanions, loadModel, writeDirAtomic, writeModelFiles } from '../src/model/checkpoint.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';

/** ChatML-like, in r1kit's special tokens: `<|user|>...<|end_of_turn|>`, then `<|assistant|>`. */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end_of_turn|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

export async function makeHfTiny(from: string, out: string): Promise<void> {
  if (!existsSync(join(from, 'config.json')))
    throw new Error(`${from}: no checkpoint there; run \`npx r1 run recipes/pretrain-tiny.yaml\` first`);
  await initBackend('cpu');
  const model = loadModel(from);
  writeDirAtomic(out, (dir) => {
    writeModelFiles(dir, model, {}, {});
    copyCompanions(from, dir);
    const tok = Tokenizer.load(dir);
    const configFile = join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? (JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>) : {};
    writeFileSync(
      configFile,
      JSON.stringify(
        { ...config, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', pad_token: '<|pad|>', chat_template: CHAT_TEMPLATE },
        null,
        2,
      ) + '\n',
    );
    const genFile = join(dir, 'generation_config.json');
    const gen = existsSync(genFile) ? (JSON.parse(readFileSync(genFile, 'utf8')) as Record<string, unknown>) : {};
    writeFileSync(
      genFile,
      JSON.stringify(
        {
          ...gen,
          bos_token_id: tok.tokenId('<|begin_of_text|>'),
          eos_token_id: [tok.tokenId('<|end_of_text|>'), tok.tokenId('<|end_of_turn|>')],
        },
        null,
        2,
      ) + '\n',
    );
  });
  model.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      from: { type: 'string', default: 'runs/pretrain-tiny/pretrain/checkpoint' },
      out: { type: 'string', default: 'runs/hf-tiny' },
    },
  });
  await makeHfTiny(resolve(values.from!), resolve(values.out!));
  process.stdout.write(`wrote ${values.out}\n`);
}
