// Lint rules: typescript-eslint's recommended set for all code, and the rules workflow
// code needs because it runs in Temporal's deterministic sandbox.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = ['fs', 'path', 'os', 'crypto', 'child_process', 'net', 'http', 'https', 'stream', 'timers', 'worker_threads', 'dns', 'url', 'util'];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'client/api-types.ts', 'client/python/', 'test-artifacts/', 'web/build.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Unused arguments are part of an interface; a leading underscore says so.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A promise nobody awaits loses its error: in an activity that is a step left half-done.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    ignores: ['workflows/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', ...NODE_BUILTINS], message: 'workflow code runs in a sandbox without Node built-ins' },
            { group: ['../activities/*', '../activities'], allowTypeImports: true, message: 'workflows import activities for their types only' },
          ],
        },
      ],
    },
  },
  {
    files: ['web/**/*.{ts,tsx}'],
    ignores: ['web/**/*.test.ts'],
    languageOptions: { parserOptions: { projectService: false, project: 'web/tsconfig.json' } },
  },
  { files: ['web/**/*.test.ts', '**/*.{js,mjs}'], ...tseslint.configs.disableTypeChecked },
  { files: ['web/**/*.test.ts', '**/*.{js,mjs}'], languageOptions: { parserOptions: { projectService: false } } },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: { module: 'readonly', require: 'readonly', process: 'readonly', console: 'readonly', __dirname: 'readonly' } },
  },
);
