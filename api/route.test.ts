import express from 'express';
import { mounter } from './route';
import { ROUTES } from './routes';

/** An authenticator whose guard answers 401 naming the scope it was asked for. */
const auth = {
  require: (scope: string, opts: { csrf?: boolean } = {}) =>
    ((_req, res) => void res.status(401).json({ scope, csrf: opts.csrf ?? true })) as express.RequestHandler,
};

async function ask(app: express.Express, method: string, path: string): Promise<{ status: number; body: unknown }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: method.toUpperCase() });
    return { status: res.status, body: await res.json().catch(() => null) };
  } finally {
    server.close();
  }
}

const served =
  (id: string): express.RequestHandler =>
  (_req, res) =>
    void res.json({ served: id });

describe('the route table mounted on Express', () => {
  it('puts every operation at its method and path, behind the guard of its scope (none where the table has none)', async () => {
    const app = express();
    const mount = mounter(app, auth);
    for (const r of ROUTES) mount(r.id, served(r.id));
    mount.complete();
    const sample = (p: string) => p.replace(/\{[^}]+\}/g, 'x');
    for (const r of ROUTES) {
      const { status, body } = await ask(app, r.method, sample(r.path));
      if (r.scope) expect([r.id, status, body]).toEqual([r.id, 401, { scope: r.scope, csrf: r.csrf ?? true }]);
      else expect([r.id, status, r.method === 'options' ? null : body]).toEqual([r.id, 200, r.method === 'options' ? null : { served: r.id }]);
    }
  });

  it.each([
    ['an operation the table does not have', (m: ReturnType<typeof mounter>) => m('noSuchOperation', served('x')), /no operation noSuchOperation/],
    [
      'an operation mounted twice',
      (m: ReturnType<typeof mounter>) => {
        m('getJob', served('a'));
        m('getJob', served('b'));
      },
      /getJob is mounted twice/,
    ],
    ['a table with an operation left unmounted', (m: ReturnType<typeof mounter>) => m.complete(), /with no handler: startJob, listJobs, .*getHealth/],
  ])('refuses %s', (_name, act, message) => {
    expect(() => act(mounter(express(), auth))).toThrow(message);
  });
});
