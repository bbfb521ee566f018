import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCODING = 'binary/encrypted';
export const KEY_ID = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface PayloadKey {
  id: string;
  key: Buffer;
}

/** `id:base64key` entries, comma-separated; the first encrypts, all decrypt (so keys can rotate). */
export function parsePayloadKeys(text: string): PayloadKey[] {
  return text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((entry) => {
      const [id, b64] = entry.split(':');
      const key = Buffer.from(b64 ?? '', 'base64');
      if (!id || !/^[A-Za-z0-9._-]{1,64}$/.test(id) || key.length !== 32) {
        throw new Error('DRAFTSMAN_PAYLOAD_KEYS: each entry must be id:base64 of a 32-byte key');
      }
      return { id, key };
    });
}

export class UnknownPayloadKeyError extends Error {
  override readonly name = 'UnknownPayloadKeyError';
  constructor(readonly keyId: string) {
    super(`no payload key with id ${keyId}`);
  }
}

/**
 * Encrypts every Temporal payload with AES-256-GCM, so that job specs and step
 * inputs and results are not readable in the server's history. The key id
 * travels in the payload's metadata.
 */
export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;

  constructor(private readonly keys: readonly PayloadKey[]) {
    if (keys.length === 0) throw new Error('AesGcmCodec needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys[0]!;
    return payloads.map((p) => {
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, key, iv);
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { [METADATA_ENCODING_KEY]: Buffer.from(ENCODING), [KEY_ID]: Buffer.from(id) },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (Buffer.from(p.metadata?.[METADATA_ENCODING_KEY] ?? []).toString() !== ENCODING) return p;
      const id = Buffer.from(p.metadata?.[KEY_ID] ?? []).toString();
      const key = this.byId.get(id);
      if (!key) throw new UnknownPayloadKeyError(id);
      const data = Buffer.from(p.data ?? []);
      const decipher = createDecipheriv(CIPHER, key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/** The data converter of every Temporal client and worker: encrypted payloads when keys are configured. */
export function dataConverterFor(config: { DRAFTSMAN_PAYLOAD_KEYS?: string }): { payloadCodecs: PayloadCodec[] } | undefined {
  return config.DRAFTSMAN_PAYLOAD_KEYS ? { payloadCodecs: [new AesGcmCodec(parsePayloadKeys(config.DRAFTSMAN_PAYLOAD_KEYS))] } : undefined;
}
