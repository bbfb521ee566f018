/**
 * Layers, lowest first. A module may import from its own layer or a lower one, never a
 * higher one, and no import cycle is allowed. `npm run lint` runs this check.
 */
const LAYERS = [
  ['common'],
  ['db', 'runner'],
  ['activities', 'egress', 'webhooks'],
  ['workflows', 'client'],
  ['worker', 'api'],
  ['stack'],
  ['cli', 'bench', 'chaos', 'testing'],
  ['test'],
];

const upward = LAYERS.flatMap((layer, rank) => {
  const higher = LAYERS.slice(rank + 1).flat();
  if (higher.length === 0) return [];
  return [
    {
      name: `layer-${layer.join('-')}`,
      comment: `${layer.join(', ')} may not import from a higher layer (${higher.join(', ')})`,
      severity: 'error',
      // Tests beside the code may use the harness (testing/).
      from: { path: `^(${layer.join('|')})/`, pathNot: '\\.test\\.ts$' },
      to: { path: `^(${higher.join('|')})/` },
    },
  ];
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle: split the shared part into its own module',
      severity: 'error',
      from: {},
      to: { circular: true, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular-types',
      comment: 'an import cycle through types only: move the shared type down a layer',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'workflows-import-activity-types-only',
      comment: 'workflow code runs in the sandbox: it may import activities for their types only',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|data|web)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
