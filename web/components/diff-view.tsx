/** The patch as a file list and one table of numbered lines per file, all as text. */
import { useMemo } from 'preact/hooks';
import { parsePatch } from '../lib/diff';

export function DiffView({ patch, truncated }: { patch: string; truncated: boolean }) {
  const files = useMemo(() => parsePatch(patch), [patch]);
  if (files.length === 0) return <p>The patch changes no file.</p>;
  return (
    <div class="diff">
      {truncated ? <p class="warning">The patch was cut at the size limit: the last file may be incomplete.</p> : null}
      <ul class="diff-files" aria-label="Changed files">
        {files.map((f, i) => (
          <li key={i}>
            <a href={`#diff-file-${i}`}>{f.path}</a> <span class={`change change-${f.change}`}>{f.change}</span> <span class="adds">+{f.additions}</span>{' '}
            <span class="dels">−{f.deletions}</span>
          </li>
        ))}
      </ul>
      {files.map((f, i) => (
        <section key={i} id={`diff-file-${i}`} class="diff-file" aria-label={`Changes to ${f.path}`}>
          <h3 class="mono">
            {f.from ? `${f.from} → ` : ''}
            {f.path}
          </h3>
          {f.lines.length === 0 ? (
            <p>No line changes (an empty or binary file, or its mode).</p>
          ) : (
            <div class="table-wrap">
              <table class="diff-lines">
                <tbody>
                  {f.lines.map((l, j) =>
                    l.kind === 'hunk' ? (
                      <tr key={j} class="hunk">
                        <td colSpan={3}>{l.text}</td>
                      </tr>
                    ) : (
                      <tr key={j} class={l.kind}>
                        <td class="ln">{l.oldNo ?? ''}</td>
                        <td class="ln">{l.newNo ?? ''}</td>
                        <td class="code">
                          <span class="marker" aria-hidden="true">
                            {l.kind === 'add' ? '+' : l.kind === 'del' ? '−' : ' '}
                          </span>
                          {l.text}
                        </td>
                      </tr>
                    ),
                  )}
                </tbody>
              </table>
            </div>
          )}
        </section>
      ))}
    </div>
  );
}
