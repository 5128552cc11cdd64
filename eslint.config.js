import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'runs/**', 'dist/**', 'kernels/build/**', 'kernels/assembly/**', '**/*.wasm', 'scratch/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // The report pages read run folders' JSON as loose records; they get types of their own with
    // the pages' rework, and this exception goes then.
    files: ['src/report/**', 'tests/report-browser.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
