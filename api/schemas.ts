/**
 * Schemas of the API's inputs besides the job spec (common/spec.ts). The routes
 * validate with them and /openapi.json is generated from them, so the two agree.
 */
import { z } from 'zod';
import { JOB_STATUSES, STEP_KINDS } from '../common/job';

export const MAX_LIST = 200;

export const listJobsQuery = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  limit: z.coerce
    .number()
    .int(`must be an integer between 1 and ${MAX_LIST}`)
    .min(1, `must be an integer between 1 and ${MAX_LIST}`)
    .max(MAX_LIST, `must be an integer between 1 and ${MAX_LIST}`)
    .optional(),
});

export const logsQuery = z.strictObject({
  step: z
    .string()
    .regex(new RegExp(`^(${STEP_KINDS.join('|')})-\\d{1,6}$`), `must be <kind>-<index> with kind one of ${STEP_KINDS.join(', ')}`)
    .optional(),
  follow: z.enum(['true', 'false', '1', '0']).optional(),
});

export const cancelBody = z.strictObject({
  reason: z.string().max(1000, 'must be at most 1000 characters').optional(),
});
