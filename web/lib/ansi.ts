/**
 * A log line's ANSI colours as text segments with class names. Only SGR colours and
 * decorations become classes (a closed set the style sheet knows); every other escape
 * and control character is dropped, so what reaches the page is plain text.
 */
import Anser from 'anser';

export interface Segment {
  text: string;
  classes: string[];
}

const COLOURS = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];
/** The 16 colours of the basic palettes, as Anser names them. */
const KNOWN = new Set(COLOURS.flatMap((c) => [`ansi-${c}`, `ansi-bright-${c}`]));
const DECORATIONS = new Set(['bold', 'dim', 'italic', 'underline', 'strikethrough']);
// Escapes Anser leaves (OSC hyperlinks, cursor moves), then the C0 controls but tab, and DEL.
// eslint-disable-next-line no-control-regex
const LEFTOVER = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b.?|[\x00-\x08\x0a-\x1f\x7f]/g;

export function ansiSegments(line: string): Segment[] {
  const out: Segment[] = [];
  for (const entry of Anser.ansiToJson(line, { use_classes: true, remove_empty: true })) {
    const text = entry.content.replace(LEFTOVER, '');
    if (!text) continue;
    const classes: string[] = [];
    if (entry.fg && KNOWN.has(entry.fg)) classes.push(`fg-${entry.fg.slice(5)}`);
    if (entry.bg && KNOWN.has(entry.bg)) classes.push(`bg-${entry.bg.slice(5)}`);
    for (const d of entry.decorations ?? []) if (DECORATIONS.has(d)) classes.push(`ansi-${d}`);
    const last = out[out.length - 1];
    if (last && last.classes.join(' ') === classes.join(' ')) last.text += text;
    else out.push({ text, classes });
  }
  return out;
}
