import { parseSpec, SpecFileError } from './spec-file';

const spec = { repo: 'https://example.com/r.git', commit: 'a'.repeat(40), validate: ['make test'] };

it.each([
  ['spec.json', JSON.stringify(spec), spec],
  ['-', JSON.stringify(spec), spec],
  ['spec.yaml', `repo: https://example.com/r.git\ncommit: "${'a'.repeat(40)}"\nvalidate:\n  - make test\n`, spec],
  ['spec.yml', `{ repo: "https://example.com/r.git", commit: "${'a'.repeat(40)}", validate: [make test] }`, spec],
  ['-', `repo: https://example.com/r.git\ncommit: "${'a'.repeat(40)}"\nvalidate: [make test]\n`, spec],
])('%s is read as a spec', (name, text, expected) => {
  expect(parseSpec(text, name)).toEqual(expected);
});

it.each([
  ['spec.json', 'repo: x', /cannot read a JSON spec from spec.json/],
  ['spec.yaml', 'repo: [unclosed', /cannot read a YAML spec from spec.yaml/],
  ['-', '- a\n- b\n', /not a mapping of fields/],
  ['spec.yaml', '42', /not a mapping of fields/],
  ['-', '', /not a mapping of fields/],
])('%s with %j is refused', (name, text, message) => {
  expect(() => parseSpec(text, name)).toThrow(SpecFileError);
  expect(() => parseSpec(text, name)).toThrow(message);
});
