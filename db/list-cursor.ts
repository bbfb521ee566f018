/**
 * The position in the job list (newest first: created_at, then id, both descending) that
 * a page ends at, as the opaque `cursor` the API hands out. The time is whole
 * microseconds since the epoch, as PostgreSQL keeps it: a millisecond Date would skip or
 * repeat jobs created within one millisecond. Pure.
 */
import { JOB_ID_PATTERN } from '../common/job';

export interface ListPosition {
  /** created_at in microseconds since the epoch, as a decimal string. */
  createdUs: string;
  id: string;
}

export function encodeCursor(p: ListPosition): string {
  return Buffer.from(JSON.stringify([p.createdUs, p.id])).toString('base64url');
}

/** The position a cursor names, or null when the text is not one this API made. */
export function decodeCursor(text: string): ListPosition | null {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(text)) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 2) return null;
    const [createdUs, id] = v as unknown[];
    if (typeof createdUs !== 'string' || !/^-?\d{1,19}$/.test(createdUs) || typeof id !== 'string' || !JOB_ID_PATTERN.test(id)) return null;
    return { createdUs, id };
  } catch {
    return null;
  }
}
