/**
 * What of a workspace's diff may be stored: a file whose change holds a secret (in any
 * form the log masker knows, binary files included), or a new file with the name of a
 * common secret file, is left out whole. Masking it instead would store a patch that no
 * longer applies. Pure, so every rule is a unit test.
 */
import path from 'node:path';
import zlib from 'node:zlib';

/** Untracked files with these names hold credentials far more often than not. */
const SECRET_FILE_NAMES = [
  /^\.env(\..+)?$/,
  /\.pem$/,
  /\.key$/,
  /^id_(rsa|dsa|ecdsa|ed25519)$/,
  /\.(p12|pfx|keystore|jks)$/,
  /^\.(netrc|npmrc|pypirc)$/,
  /^credentials(\.json)?$/,
];

export interface PatchFile {
  /** The path in the repository (the `b/` side). */
  file: string;
  isNew: boolean;
  section: Buffer;
}

export interface Withheld {
  file: string;
  reason: 'holds a secret' | 'secret file name' | 'not a file diff' | 'binary cut at the cap';
}

/** The name a withheld piece of text that belongs to no file is listed under. */
export const OUTSIDE_FILES = '(text outside any file diff)';

/** Splits `git diff --binary` output into one section per file. */
export function splitPatch(data: Buffer): PatchFile[] {
  const text = data.toString('latin1');
  const starts: number[] = [];
  const re = /^diff --git /gm;
  for (let m = re.exec(text); m; m = re.exec(text)) starts.push(m.index);
  return starts.map((start, i) => {
    const end = starts[i + 1] ?? text.length;
    const section = data.subarray(start, end);
    const head = text.slice(start, text.indexOf('\n', start) + 1 || end);
    // `diff --git a/X b/X`: names with spaces or quotes are quoted by git; the b/ side is what the file is now.
    const m = /^diff --git (?:"?a\/.*?"?) "?b\/(.*?)"?\n$/.exec(head);
    const isNew = /^new file mode /m.test(text.slice(start, Math.min(end, start + 2048)));
    return { file: m?.[1] ?? head.trim(), isNew, section };
  });
}

/** The 85 characters of git's base85, in order. */
const B85 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~';

/** The bytes a `GIT binary patch` block carries (literal or delta), inflated; null if it cannot be read. */
export function binaryPayloads(section: string): Buffer[] {
  const out: Buffer[] = [];
  const blocks = section.split(/^(?:literal|delta) \d+\n/m).slice(1);
  for (const block of blocks) {
    const bytes: number[] = [];
    for (const line of block.split('\n')) {
      if (line === '') break;
      const c = line.charCodeAt(0);
      const len = c >= 65 && c <= 90 ? c - 64 : c >= 97 && c <= 122 ? c - 70 : -1;
      if (len < 0) break;
      const data = line.slice(1);
      const decoded: number[] = [];
      for (let i = 0; i + 5 <= data.length; i += 5) {
        let acc = 0;
        for (let j = 0; j < 5; j++) acc = acc * 85 + B85.indexOf(data[i + j]!);
        decoded.push((acc >>> 24) & 255, (acc >>> 16) & 255, (acc >>> 8) & 255, acc & 255);
      }
      bytes.push(...decoded.slice(0, len));
    }
    try {
      out.push(zlib.inflateSync(Buffer.from(bytes)));
    } catch {
      // Not readable: judged by its text alone.
    }
  }
  return out;
}

/**
 * The patch without the files it must not keep, and which those were. Text that is no
 * file's diff (before the first header, or a patch with none) is never kept: nothing
 * git prints there, so it could only be put there. When the patch was cut at its cap, a
 * binary block cut short is withheld: its end cannot be read, so it cannot be judged.
 */
export function withholdFiles(data: Buffer, holdsSecret: (text: string) => boolean, truncated = false): { kept: Buffer; withheld: Withheld[] } {
  const files = splitPatch(data);
  const withheld: Withheld[] = [];
  const before = files.length === 0 ? data : data.subarray(0, files[0]!.section.byteOffset - data.byteOffset);
  if (before.length > 0) withheld.push({ file: OUTSIDE_FILES, reason: 'not a file diff' });
  const kept: Buffer[] = [];
  for (const [i, f] of files.entries()) {
    const text = f.section.toString('utf8');
    const binary = text.includes('GIT binary patch');
    const payloads = binary ? binaryPayloads(f.section.toString('latin1')) : [];
    if (holdsSecret(text) || payloads.some((p) => holdsSecret(p.toString('latin1')) || holdsSecret(p.toString('utf8')))) {
      withheld.push({ file: f.file, reason: 'holds a secret' });
    } else if (truncated && binary && i === files.length - 1) {
      withheld.push({ file: f.file, reason: 'binary cut at the cap' });
    } else if (f.isNew && SECRET_FILE_NAMES.some((re) => re.test(path.posix.basename(f.file)))) {
      withheld.push({ file: f.file, reason: 'secret file name' });
    } else {
      kept.push(f.section);
    }
  }
  return { kept: Buffer.concat(kept), withheld };
}
