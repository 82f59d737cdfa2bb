import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { ConsentAudit } from '../src/consent/index.js';
import { SessionError, type SessionVerifier } from '../src/auth/index.js';
import { parseInstant } from '../src/util/instant.js';
import { sendJson } from './responses.js';

/**
 * `GET /audit/export.ndjson`: consent records as NDJSON for internal tools, with the same bearer
 * token (scope audit:read) as the API. The first line is read before the status is sent, so a
 * database that does not answer is a 503 (the router's), not a 200 cut short.
 */
export function createAuditExport(deps: { config: GatewayConfig; audit: ConsentAudit; verify: SessionVerifier; log: Logger }) {
  const { config, audit, verify, log } = deps;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    let session;
    try {
      if (!m) throw new SessionError('missing', 'missing bearer session token');
      session = await verify(m[1]!);
    } catch (e) {
      res.setHeader('www-authenticate', 'Bearer realm="wxphone"');
      return sendJson(res, 401, { errors: [{ message: e instanceof SessionError ? e.message : 'unauthenticated', extensions: { code: 'UNAUTHENTICATED' } }] });
    }
    if (!session.scopes.has('audit:read')) return sendJson(res, 403, { errors: [{ message: 'the export needs the audit:read scope', extensions: { code: 'FORBIDDEN' } }] });
    const q = new URL(req.url ?? '/', 'http://gateway').searchParams;
    const appid = q.get('appid') ?? '';
    if (!config.apps.has(appid)) return sendJson(res, 400, { errors: [{ message: 'appid must name an app this gateway serves' }] });
    const time = (name: string) => {
      const v = q.get(name);
      if (v === null) return null;
      try {
        return parseInstant(v);
      } catch {
        throw new Error(`${name} must be an ISO 8601 date and time with a zone`);
      }
    };
    let from: number | null;
    let to: number | null;
    try {
      from = time('from');
      to = time('to');
    } catch (e) {
      return sendJson(res, 400, { errors: [{ message: (e as Error).message }] });
    }
    const subject = q.get('subject');
    const filter = {
      appid,
      subjectHash: subject ? audit.subjectHashOf(config.jwt.issuer, subject) : q.get('subjectHash'),
      purpose: q.get('purpose'),
      from,
      to,
    };
    const lines = audit.exportNdjson(filter);
    let next = await lines.next();
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'content-disposition': `attachment; filename="consent-${appid}.ndjson"` });
    let gone = false;
    res.once('close', () => (gone = true));
    try {
      for (; !next.done; next = await lines.next()) {
        if (gone) return void (await lines.return(undefined));
        if (!res.write(next.value)) await new Promise((r) => (res.once('drain', r), res.once('close', r)));
      }
      res.end();
    } catch (e) {
      // A cut-off export must not look complete: break the connection instead of ending it.
      log.warn({ err: (e as Error).message, appid }, 'consent export failed mid-stream');
      res.destroy(e as Error);
    }
  };
}
