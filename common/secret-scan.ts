/**
 * The one secret scanner every sink goes through (logs, the patch, events and the job
 * view, caches and kept workspaces): it finds a job's secret values in a text in the
 * forms an agent reaches for without trying, and says where, so that a sink can mask or
 * refuse. Pure: every form is a unit test.
 *
 * A text is looked at through several views, each a rewriting of it that keeps, for
 * every character, where in the text it came from:
 * - as it is: the value, its base64 (whole, or inside a longer base64 string at any of
 *   the three alignments), base64url, URL-encoding (either case, form-encoded), hex;
 * - without white space: base64 wrapped at any column (`base64` wraps at 76), a value
 *   cut by a line break (a 64 KiB line cut, a terminal's wrap), hex printed in groups;
 * - as hex digits alone, hex dumps read as their bytes (`xxd`, `od`, `hexdump -C`:
 *   addresses and gutters dropped): a match there masks the whole lines, whose gutter
 *   shows the value in pieces;
 * - URL-decoded (any set of characters escaped, `+` as a space or not);
 * - JSON-unescaped (`\/`, `\"`, `\uXXXX`...).
 */

/** Shortest secret (or secret line) that is looked for; shorter ones would match ordinary text. */
export const MIN_SECRET = 4;
/**
 * Shortest secret whose encoded and rewritten forms are looked for: the part of an
 * encoded form that depends on the secret alone is about 4/3 of it long, and a shorter
 * one turns up in ordinary output by chance.
 */
export const MIN_ENCODED = 8;

const MASK = '***';

/** A rewriting of a text: its characters, and for each the span [from, to) of the text it came from. */
interface View {
  text: string;
  from: number[];
  to: number[];
  /** Characters from a hex dump's line: a match that takes one masks the whole lines it touches. */
  dump?: boolean[];
}

class ViewBuilder {
  private readonly chars: string[] = [];
  readonly from: number[] = [];
  readonly to: number[] = [];
  readonly dump: boolean[] = [];
  add(s: string, from: number, to: number, dump = false): void {
    for (const c of s) {
      this.chars.push(c);
      this.from.push(from);
      this.to.push(to);
      this.dump.push(dump);
    }
  }
  view(): View {
    return { text: this.chars.join(''), from: this.from, to: this.to, dump: this.dump };
  }
}

function withoutSpace(text: string): View {
  const b = new ViewBuilder();
  for (let i = 0; i < text.length; i++) if (!/\s/.test(text[i]!)) b.add(text[i]!, i, i + 1);
  return b.view();
}

/** An address column of a dump (`00000010:` of xxd, `0000020` of od, `00000010` of hexdump -C), and xxd's or hexdump's text gutter. */
const DUMP_LINE = /^([0-9a-fA-F]{6,16}:?)( +)(.*?)(?: {2,}\|?[^|]*\|?)?$/;

/** The bytes part of a hex dump's line (the line itself when it is no dump's), and where it starts. */
function dumpBody(line: string): { body: string; offset: number } {
  const dump = DUMP_LINE.exec(line);
  if (dump && /^[0-9a-fA-F]{2,4}( {1,2}[0-9a-fA-F]{2,4})*\s*$/.test(dump[3]!)) return { body: dump[3]!, offset: dump[1]!.length + dump[2]!.length };
  return { body: line, offset: 0 };
}

function hexDigits(text: string): View {
  const b = new ViewBuilder();
  let at = 0;
  for (const line of text.split('\n')) {
    const { body, offset } = dumpBody(line);
    const dump = offset > 0;
    for (let i = 0; i < body.length; i++) {
      const c = body[i]!;
      // `0x61, 0x62` and `\x61\x62` spell hex too: the prefix is no digit of it.
      if ((c === '0' || c === '\\') && (body[i + 1] === 'x' || body[i + 1] === 'X')) {
        i++;
        continue;
      }
      if (/[0-9a-fA-F]/.test(c)) b.add(c.toLowerCase(), at + offset + i, at + offset + i + 1, dump);
    }
    at += line.length + 1;
  }
  return b.view();
}

function urlDecoded(text: string, plusIsSpace: boolean): View {
  const b = new ViewBuilder();
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '%' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      b.add(String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16)), i, i + 3);
      i += 2;
    } else b.add(plusIsSpace && c === '+' ? ' ' : c, i, i + 1);
  }
  return b.view();
}

const JSON_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function jsonUnescaped(text: string): View {
  const b = new ViewBuilder();
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '\\' && next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
      b.add(String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16)), i, i + 6);
      i += 5;
    } else if (c === '\\' && next !== undefined && next in JSON_ESCAPES) {
      b.add(JSON_ESCAPES[next]!, i, i + 2);
      i += 1;
    } else b.add(c, i, i + 1);
  }
  return b.view();
}

/**
 * The base64 of `value` wherever it sits in a longer text: a text's base64 holds the
 * value's bytes at one of three alignments, and at each the characters that depend on
 * the value alone are the same whatever surrounds it.
 */
function base64Cores(value: Buffer): string[] {
  const cores: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), value]).toString('base64');
    const first = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * (shift + value.length)) / 6);
    const core = b64.slice(first, end);
    cores.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return cores;
}

/** The forms of one value looked for in each view. */
function formsOf(value: string): { raw: string[]; unspaced: string[]; hex: string[]; decoded: string[] } {
  if (value.length < MIN_SECRET) return { raw: [], unspaced: [], hex: [], decoded: [] };
  const bytes = Buffer.from(value);
  const b64 = bytes.toString('base64');
  const url = encodeURIComponent(value);
  const raw = [
    value,
    b64,
    b64.replace(/=+$/, ''),
    bytes.toString('base64url'),
    url,
    url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    url.replace(/%20/g, '+'),
  ];
  if (value.length < MIN_ENCODED) return { raw, unspaced: [], hex: [], decoded: [] };
  const hex = bytes.toString('hex');
  const cores = base64Cores(bytes);
  raw.push(...cores, hex, hex.toUpperCase());
  return {
    raw,
    unspaced: [value.replace(/\s/g, ''), ...cores, hex, hex.toUpperCase()],
    hex: [hex],
    decoded: [value, bytes.toString('latin1')],
  };
}

export interface SecretScanner {
  /** Whether there is anything to look for (no secret, or only ones too short). */
  readonly empty: boolean;
  /** The longest form looked for, in characters: a window of text this long after a point sees any form that starts before it. */
  readonly longest: number;
  /** Spans [from, to) of `text` that hold a secret, merged and in order. */
  spans(text: string): [number, number][];
  holds(text: string): boolean;
  /** The text with every span that holds a secret replaced by ***. */
  mask(text: string): string;
  /**
   * Lines read together, as one text (a window that spans line cuts, wraps and chunk
   * boundaries): each line masked where a secret form found across them touches it.
   */
  maskLines(lines: readonly string[]): string[];
}

/** The scanner of a job's secret values (a multi-line value is also looked for line by line: logs are stored by line). */
export function secretScanner(values: readonly string[]): SecretScanner {
  const sets = { raw: new Set<string>(), unspaced: new Set<string>(), hex: new Set<string>(), decoded: new Set<string>() };
  for (const v of values) {
    for (const line of new Set([v, ...v.split(/\r?\n/).map((l) => l.trim())])) {
      const f = formsOf(line);
      for (const k of Object.keys(sets) as (keyof typeof sets)[]) for (const form of f[k]) if (form.length >= MIN_SECRET) sets[k].add(form);
    }
  }
  const ordered = (s: Set<string>) => [...s].sort((a, b) => b.length - a.length);
  const forms = { raw: ordered(sets.raw), unspaced: ordered(sets.unspaced), hex: ordered(sets.hex), decoded: ordered(sets.decoded) };
  const empty = forms.raw.length === 0;
  const longest = Math.max(0, ...[...forms.raw, ...forms.unspaced].map((f) => f.length), ...forms.hex.map((f) => f.length * 2));

  function find(view: View, wanted: readonly string[], original: string, out: [number, number][]): void {
    for (const form of wanted) {
      for (let at = view.text.indexOf(form); at !== -1; at = view.text.indexOf(form, at + 1)) {
        let from = view.from[at]!;
        let to = view.to[at + form.length - 1]!;
        if (view.dump?.[at] || view.dump?.[at + form.length - 1]) {
          from = original.lastIndexOf('\n', from - 1) + 1;
          const end = original.indexOf('\n', to);
          to = end === -1 ? original.length : end;
        }
        out.push([from, to]);
      }
    }
  }

  function spans(text: string): [number, number][] {
    // The views as plain strings first: most text holds nothing, and mapping every character back costs.
    if (!holds(text)) return [];
    const found: [number, number][] = [];
    // As it is: plain indexes.
    for (const form of forms.raw) for (let at = text.indexOf(form); at !== -1; at = text.indexOf(form, at + 1)) found.push([at, at + form.length]);
    if (forms.unspaced.length) find(withoutSpace(text), forms.unspaced, text, found);
    if (forms.hex.length) find(hexDigits(text), forms.hex, text, found);
    if (forms.decoded.length && /%[0-9a-fA-F]{2}|\+/.test(text)) {
      find(urlDecoded(text, false), forms.decoded, text, found);
      find(urlDecoded(text, true), forms.decoded, text, found);
    }
    if (forms.decoded.length && text.includes('\\')) find(jsonUnescaped(text), forms.decoded, text, found);
    found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const merged: [number, number][] = [];
    for (const s of found) {
      const last = merged.at(-1);
      if (last && s[0] < last[1]) last[1] = Math.max(last[1], s[1]);
      else merged.push([s[0], s[1]]);
    }
    return merged;
  }

  function mask(text: string): string {
    const found = spans(text);
    if (found.length === 0) return text;
    let out = '';
    let at = 0;
    for (const [from, to] of found) {
      out += text.slice(at, from) + MASK;
      at = to;
    }
    return out + text.slice(at);
  }

  function maskLines(lines: readonly string[]): string[] {
    if (empty) return [...lines];
    const joined = lines.join('\n');
    const found = spans(joined);
    if (found.length === 0) return [...lines];
    const out: string[] = [];
    let start = 0;
    for (const line of lines) {
      const end = start + line.length;
      let masked = '';
      let at = start;
      for (const [from, to] of found) {
        if (to <= start || from >= end) continue;
        const a = Math.max(from, start);
        masked += joined.slice(at, a) + MASK;
        at = Math.min(to, end);
      }
      out.push(masked + joined.slice(at, end));
      start = end + 1;
    }
    return out;
  }

  /** Whether any form is in the text: the views as strings alone (no map back), for large texts (a cache's files, a patch). */
  function holds(text: string): boolean {
    if (empty || text.length < MIN_SECRET) return false;
    const has = (t: string, wanted: readonly string[]) => wanted.some((f) => t.includes(f));
    if (has(text, forms.raw)) return true;
    if (forms.unspaced.length && /\s/.test(text) && has(text.replace(/\s+/g, ''), forms.unspaced)) return true;
    if (forms.hex.length) {
      const digits = text
        .split('\n')
        .map((l) =>
          dumpBody(l)
            .body.replace(/(0|\\)[xX]/g, '')
            .replace(/[^0-9a-fA-F]+/g, ''),
        )
        .join('')
        .toLowerCase();
      if (has(digits, forms.hex)) return true;
    }
    if (forms.decoded.length && /%[0-9a-fA-F]{2}|\+/.test(text)) {
      const decoded = text.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      if (has(decoded, forms.decoded)) return true;
      const plus = text.replace(/%([0-9a-fA-F]{2})|\+/g, (m, h?: string) => (h ? String.fromCharCode(parseInt(h, 16)) : ' '));
      if (has(plus, forms.decoded)) return true;
    }
    if (forms.decoded.length && text.includes('\\')) {
      const unescaped = text.replace(/\\u([0-9a-fA-F]{4})|\\(["\\/bfnrt])/g, (_, u?: string, c?: string) =>
        u ? String.fromCharCode(parseInt(u, 16)) : JSON_ESCAPES[c!]!,
      );
      if (has(unescaped, forms.decoded)) return true;
    }
    return false;
  }

  return { empty, longest, spans, holds, mask, maskLines };
}
