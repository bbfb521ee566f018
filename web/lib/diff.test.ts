import { parsePatch, unquoteGitPath } from './diff';

const ADDED_HTML_NAME = `diff --git a/<img src=x onerror=alert(1)>.html b/<img src=x onerror=alert(1)>.html
new file mode 100644
index 0000000..3b18e51
--- /dev/null
+++ b/<img src=x onerror=alert(1)>.html
@@ -0,0 +1,2 @@
+<script>alert(2)</script>
+second
`;

const MODIFIED = `diff --git a/src/a.ts b/src/a.ts
index 1111111..2222222 100644
--- a/src/a.ts
+++ b/src/a.ts
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
`;

const DELETED = `diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 1111111..0000000
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
`;

const RENAMED = `diff --git a/old.txt b/new.txt
similarity index 100%
rename from old.txt
rename to new.txt
`;

describe('parsePatch', () => {
  it.each([
    ['an added file whose name is HTML', ADDED_HTML_NAME, { path: '<img src=x onerror=alert(1)>.html', change: 'added', additions: 2, deletions: 0 }],
    ['a modified file', MODIFIED, { path: 'src/a.ts', change: 'modified', additions: 1, deletions: 1 }],
    ['a deleted file', DELETED, { path: 'gone.txt', change: 'deleted', additions: 0, deletions: 1 }],
    ['a renamed file', RENAMED, { path: 'new.txt', from: 'old.txt', change: 'renamed', additions: 0, deletions: 0, lines: [] }],
  ])('%s', (_name, patch, expected) => {
    const [file, ...rest] = parsePatch(patch);
    expect(rest).toEqual([]);
    expect(file).toMatchObject(expected);
  });

  it('numbers lines on both sides and keeps their text without the marker', () => {
    const [file] = parsePatch(MODIFIED);
    expect(file!.lines).toEqual([
      { kind: 'hunk', text: '@@ -1,3 +1,3 @@' },
      { kind: 'ctx', text: 'one', oldNo: 1, newNo: 1 },
      { kind: 'del', text: 'two', oldNo: 2 },
      { kind: 'add', text: 'TWO', newNo: 2 },
      { kind: 'ctx', text: 'three', oldNo: 3, newNo: 3 },
    ]);
  });

  it('reads several files in order, and nothing from an empty patch', () => {
    expect(parsePatch(MODIFIED + DELETED).map((f) => f.path)).toEqual(['src/a.ts', 'gone.txt']);
    expect(parsePatch('')).toEqual([]);
  });
});

describe('unquoteGitPath', () => {
  it.each([
    ['plain/name.txt', 'plain/name.txt'],
    ['<img src=x onerror=alert(\\"name\\")>.html', '<img src=x onerror=alert("name")>.html'],
    ['back\\\\slash', 'back\\slash'],
    ['tab\\there', 'tab\there'],
    ['caf\\303\\251.txt', 'café.txt'],
  ])('%s is %s', (quoted, name) => {
    expect(unquoteGitPath(quoted)).toBe(name);
  });

  it('reads a quoted name in a patch', () => {
    const patch = `diff --git "a/say \\"hi\\".txt" "b/say \\"hi\\".txt"
new file mode 100644
index 0000000..45b983b
--- /dev/null
+++ "b/say \\"hi\\".txt"
@@ -0,0 +1 @@
+hi
`;
    expect(parsePatch(patch).map((f) => f.path)).toEqual(['say "hi".txt']);
  });
});
