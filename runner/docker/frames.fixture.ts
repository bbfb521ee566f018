/** Builds one frame of Docker's multiplexed stream (1: stdout, 2: stderr), for the parsers' tests. */
export function frame(stream: 1 | 2, text: string): Buffer {
  const data = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}
