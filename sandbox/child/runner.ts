// The runner of the language a sandbox process was started for (its first argument), from the
// languages table; shared by the child entries (main.ts, breach.ts). An unknown name ends the process
// before it says ready, which the pool reports as a start failure.
import { LANGUAGES, isLanguage, languageList, type LanguageRunner } from '../languages.ts';

export async function loadRunner(language: string | undefined): Promise<LanguageRunner> {
  if (!isLanguage(language)) throw new Error(`sandbox process: language ${JSON.stringify(language)} is not ${languageList()}`);
  return LANGUAGES[language].runner();
}
