import { demuxDockerStream } from './demux';
import { frame } from './frames.fixture';

describe('demuxDockerStream', () => {
  it('splits frames in order and tags their stream', () => {
    const chunks = demuxDockerStream(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more')]));
    expect(chunks.map((c) => [c.stream, c.data.toString()])).toEqual([
      ['stdout', 'out\n'],
      ['stderr', 'err\n'],
      ['stdout', 'more'],
    ]);
  });

  it('keeps what there is of a truncated last frame', () => {
    const whole = frame(1, 'abcdef');
    const chunks = demuxDockerStream(Buffer.concat([frame(2, 'x'), whole.subarray(0, 11)]));
    expect(chunks.map((c) => c.data.toString())).toEqual(['x', 'abc']);
  });

  it('returns nothing for an empty buffer', () => {
    expect(demuxDockerStream(Buffer.alloc(0))).toEqual([]);
  });
});
