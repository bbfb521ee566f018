/**
 * Docker multiplexes a non-TTY container's stdout and stderr into frames with an
 * 8-byte header: [stream, 0, 0, 0, size (big-endian u32)]. Pure, for tests.
 */
export interface LogChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export function demuxDockerStream(buf: Buffer): LogChunk[] {
  const chunks: LogChunk[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const type = buf[offset];
    const size = buf.readUInt32BE(offset + 4);
    const start = offset + 8;
    const end = Math.min(start + size, buf.length);
    chunks.push({ stream: type === 2 ? 'stderr' : 'stdout', data: buf.subarray(start, end) });
    offset = start + size;
  }
  return chunks;
}
