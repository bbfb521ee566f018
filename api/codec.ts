import type { Payload, PayloadCodec } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';

import { HttpError } from './errors';
import type { Mount } from './route';
import { payloadsBody } from './schemas';

const fromJson = (p: { metadata?: Record<string, string>; data?: string }): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

/**
 * POST /codec/encode and /codec/decode, so that the Temporal Web UI (configured
 * with this API as its codec server) shows decrypted payloads to an operator with
 * a read token. CORS is open only to the configured origins.
 */
export function mountCodec(mount: Mount, codec: PayloadCodec | undefined, origins: readonly string[]): void {
  const cors = (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin && origins.includes(origin)) {
      res.set({
        'access-control-allow-origin': origin,
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, x-namespace',
        'access-control-allow-credentials': 'true',
        vary: 'origin',
      });
    }
    if (req.method === 'OPTIONS') return void res.status(204).end();
    next();
  };
  const json = express.json({ limit: '4mb' });
  for (const op of ['encode', 'decode'] as const) {
    mount(`${op}PayloadsPreflight`, cors);
    // CORS headers first: a refused request needs them too, for the browser to read the refusal.
    mount.after([cors], `${op}Payloads`, json, async (req, res) => {
      if (!codec) throw new HttpError('codec_disabled', 'payload encryption is not configured (DRAFTSMAN_PAYLOAD_KEYS)');
      const parsed = payloadsBody.safeParse(req.body);
      if (!parsed.success) throw new HttpError('invalid_body', 'body must be { "payloads": [{ metadata, data }] }', 'payloads');
      const input = parsed.data.payloads.map(fromJson);
      try {
        const out = op === 'encode' ? await codec.encode(input) : await codec.decode(input);
        res.json({ payloads: out.map(toJson) });
      } catch (err) {
        throw new HttpError('codec_failed', `cannot ${op}: ${(err as Error).message}`, 'payloads');
      }
    });
  }
}
