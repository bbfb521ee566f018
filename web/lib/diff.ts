/**
 * A patch (git's unified diff) as files and numbered lines for the diff viewer. File names
 * and lines are data of untrusted steps: they are only ever rendered as text.
 */
import parseDiff from 'parse-diff';

export type FileChange = 'added' | 'deleted' | 'renamed' | 'modified';

export interface DiffLine {
  kind: 'hunk' | 'add' | 'del' | 'ctx';
  text: string;
  oldNo?: number;
  newNo?: number;
}

export interface DiffFile {
  path: string;
  /** The old path of a renamed file. */
  from?: string;
  change: FileChange;
  additions: number;
  deletions: number;
  /** No line changes: an empty or a binary file, or a change of mode only. */
  lines: DiffLine[];
}

const NULL = '/dev/null';

const C_ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/**
 * A path as git wrote it. Git quotes a name with a quote, a backslash, a control or (by
 * default) a non-ASCII character, in C style with octal bytes; the parser takes off the
 * quotes and leaves the escapes. A backslash in a name always comes escaped, so any
 * backslash left marks such a name.
 */
export function unquoteGitPath(path: string): string {
  if (!path.includes('\\')) return path;
  const bytes: number[] = [];
  const utf8 = new TextEncoder();
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c !== '\\' || i === path.length - 1) {
      bytes.push(...utf8.encode(c));
      continue;
    }
    const octal = /^[0-3][0-7]{2}/.exec(path.slice(i + 1));
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
    } else if (path[i + 1]! in C_ESCAPES) {
      bytes.push(C_ESCAPES[path[i + 1]!]!);
      i += 1;
    } else bytes.push(92);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

export function parsePatch(patch: string): DiffFile[] {
  return parseDiff(patch).map((f) => {
    const change: FileChange = f.new || f.from === NULL ? 'added' : f.deleted || f.to === NULL ? 'deleted' : f.from !== f.to ? 'renamed' : 'modified';
    const path = unquoteGitPath((change === 'deleted' ? f.from : f.to) ?? f.from ?? '(unnamed)');
    const lines: DiffLine[] = [];
    for (const chunk of f.chunks) {
      lines.push({ kind: 'hunk', text: chunk.content });
      for (const c of chunk.changes) {
        // The first character is the diff's own marker (+, -, space).
        const text = c.content.slice(1);
        if (c.type === 'add') lines.push({ kind: 'add', text, newNo: c.ln });
        else if (c.type === 'del') lines.push({ kind: 'del', text, oldNo: c.ln });
        else lines.push({ kind: 'ctx', text, oldNo: c.ln1, newNo: c.ln2 });
      }
    }
    return {
      path,
      ...(change === 'renamed' && f.from ? { from: unquoteGitPath(f.from) } : {}),
      change,
      additions: f.additions,
      deletions: f.deletions,
      lines,
    };
  });
}
