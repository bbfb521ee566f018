/** The route table's operations: The Temporal Web UI's remote codec. (api/routes.ts puts the table together.) */

import { codecPath } from '../openapi-parts';

import type { Route } from './route';

export const CODEC_ROUTES: readonly Route[] = [
  {
    id: 'encodePayloads',
    csrf: false,
    method: 'post',
    path: '/codec/encode',
    tag: 'codec',
    scope: 'read',
    doc: () => codecPath('Encrypt payloads (Temporal remote codec protocol)').post,
  },
  {
    id: 'encodePayloadsPreflight',
    method: 'options',
    path: '/codec/encode',
    tag: 'codec',
    scope: null,
    doc: () => codecPath('Encrypt payloads (Temporal remote codec protocol)').options,
  },
  {
    id: 'decodePayloads',
    csrf: false,
    method: 'post',
    path: '/codec/decode',
    tag: 'codec',
    scope: 'read',
    doc: () => codecPath('Decrypt payloads for the Temporal Web UI (remote codec protocol)').post,
  },
  {
    id: 'decodePayloadsPreflight',
    method: 'options',
    path: '/codec/decode',
    tag: 'codec',
    scope: null,
    doc: () => codecPath('Decrypt payloads for the Temporal Web UI (remote codec protocol)').options,
  },
];
