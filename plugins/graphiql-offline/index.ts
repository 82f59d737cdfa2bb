import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';

/**
 * GraphiQL served entirely by the gateway. yoga's own page loads GraphiQL from a CDN, which is
 * blocked or slow in many networks (and absent in closed ones): the page stays "Loading…". Here
 * the page, its script, its stylesheet and the editor's workers all come from this server, from
 * the `@graphql-yoga/graphiql` package (a development dependency: production serves no GraphiQL).
 */
export interface LocalGraphiQL {
  /** For createYoga's `renderGraphiQL`. */
  render: (options?: GraphiQLOptions) => string;
  /** Serves the assets under `prefix`. */
  plugin: Plugin;
}

const ASSETS: Record<string, string> = {
  'graphiql.css': 'text/css; charset=utf-8',
  'yoga-graphiql.umd.js': 'text/javascript; charset=utf-8',
  'monacoeditorwork/editor.worker.bundle.js': 'text/javascript; charset=utf-8',
  'monacoeditorwork/json.worker.bundle.js': 'text/javascript; charset=utf-8',
  'monacoeditorwork/graphql.worker..bundle.js': 'text/javascript; charset=utf-8',
};

function packageDist(): { dir: string; version: string } | undefined {
  try {
    const require = createRequire(import.meta.url);
    const manifest = require.resolve('@graphql-yoga/graphiql/package.json');
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    return { dir: join(dirname(manifest), 'dist'), version };
  } catch {
    return undefined;
  }
}

export function localGraphiQL(prefix = '/graphiql-assets'): LocalGraphiQL {
  const dist = packageDist();
  // The version is in the path, so the assets can be cached for good.
  const base = dist ? `${prefix}/${dist.version}/` : undefined;
  const loaded = new Map<string, string>();

  const render = (options: GraphiQLOptions = {}) => {
    const title = escapeHtml(options.title ?? 'GraphiQL');
    if (!base) {
      return `<!doctype html><html lang=en><head><meta charset=utf-8><title>${title}</title></head><body><p>GraphiQL's files are not installed here (the @graphql-yoga/graphiql development dependency: run <code>npm install</code> without <code>--omit=dev</code>). The API itself works: POST GraphQL requests to this URL.</p></body></html>`;
    }
    // Inside a <script>, so "</" must not close it early.
    const opts = JSON.stringify(options).replace(/</g, '\\u003c');
    const workers = {
      editorWorkerService: `${base}monacoeditorwork/editor.worker.bundle.js`,
      json: `${base}monacoeditorwork/json.worker.bundle.js`,
      graphql: `${base}monacoeditorwork/graphql.worker..bundle.js`,
    };
    return `<!doctype html><html lang=en><head><meta charset=utf-8><title>${title}</title><link rel=icon href="data:,"><link rel=stylesheet href="${base}graphiql.css"></head><body id=body class=no-focus-outline><noscript>You need to enable JavaScript to run this app.</noscript><div id=root>Loading ${title}…</div><script>
const workerUrls = ${JSON.stringify(workers)};
const workers = {};
// Monaco starts its workers from URLs it is given; blob URLs of the fetched bundles keep them same-origin.
function prepareWorkers() {
  return Promise.all(Object.entries(workerUrls).map(async ([name, url]) => {
    const text = await (await fetch(url)).text();
    workers[name] = URL.createObjectURL(new Blob([text], { type: 'application/javascript' }));
  }));
}
self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_id, label) => workers[label] };
</script><script src="${base}yoga-graphiql.umd.js"></script><script>prepareWorkers().finally(() => YogaGraphiQL.renderYogaGraphiQL(root, ${opts}));</script></body></html>`;
  };

  const plugin: Plugin = {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (!base || !url.pathname.startsWith(base) || request.method !== 'GET') return;
      const name = url.pathname.slice(base.length);
      const type = ASSETS[name];
      if (!type) return void endResponse(new fetchAPI.Response('not found', { status: 404 }));
      let body = loaded.get(name);
      if (!body) {
        body = readFileSync(join(dist!.dir, name), 'utf8');
        loaded.set(name, body);
      }
      endResponse(new fetchAPI.Response(body, { status: 200, headers: { 'content-type': type, 'cache-control': 'public, max-age=31536000, immutable' } }));
    },
  };
  return { render, plugin };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
