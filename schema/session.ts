import { builder } from './builder.js';
import type { Session } from '../src/auth/index.js';

const SessionInfo = builder.objectRef<Session>('Session').implement({
  description: 'The verified session token of this request.',
  fields: (t) => ({
    subject: t.exposeString('subject'),
    appid: t.exposeString('appid', { nullable: true }),
    scopes: t.stringList({ resolve: (s) => [...s.scopes].sort() }),
    expiresAt: t.string({ description: 'ISO 8601.', resolve: (s) => new Date(s.expiresAt).toISOString() }),
  }),
});

builder.queryField('session', (t) =>
  t.field({ type: SessionInfo, description: 'Who the gateway thinks is calling.', resolve: (_root, _args, ctx) => ctx.session }),
);
