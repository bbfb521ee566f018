import { ansiSegments } from './ansi';

describe('ansiSegments', () => {
  it.each([
    ['plain text', 'hello', [{ text: 'hello', classes: [] }]],
    [
      'a colour and a reset',
      '\x1b[31mred\x1b[0m plain',
      [
        { text: 'red', classes: ['fg-red'] },
        { text: ' plain', classes: [] },
      ],
    ],
    ['bold bright green on blue', '\x1b[1;92;44mok\x1b[0m', [{ text: 'ok', classes: ['fg-bright-green', 'bg-blue', 'ansi-bold'] }]],
    ['a 256-colour palette entry (no class: the set is closed)', '\x1b[38;5;200mx\x1b[0m', [{ text: 'x', classes: [] }]],
    ['a true colour (no inline style)', '\x1b[38;2;1;2;3mx\x1b[0m', [{ text: 'x', classes: [] }]],
    ['an OSC hyperlink: its target dropped, its text kept', 'see \x1b]8;;https://example.test\x07here\x1b]8;;\x07', [{ text: 'see here', classes: [] }]],
    ['cursor moves and other controls dropped', 'a\x1b[2Kb\x08c\x00d\x7f', [{ text: 'abcd', classes: [] }]],
    ['a tab kept', 'a\tb', [{ text: 'a\tb', classes: [] }]],
    ['markup stays text', '<script>alert(1)</script>', [{ text: '<script>alert(1)</script>', classes: [] }]],
    ['nothing', '', []],
  ])('%s', (_name, line, segments) => {
    expect(ansiSegments(line)).toEqual(segments);
  });
});
