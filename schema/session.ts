import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import type { Session } from '../src/auth/index.js';

const SessionInfo = builder.objectRef<Session>('Session').implement({
  description: 'The verified session token of this request.',
  fields: (t) => ({
    subject: t.exposeString('subject', { description: "The token's sub: a user's openid, or an operator's name." }),
    appid: t.exposeString('appid', { nullable: true, description: "The token's appid; null for an operator token that spans apps." }),
    scopes: t.stringList({ description: "The token's scopes, sorted.", resolve: (s) => [...s.scopes].sort() }),
    expiresAt: t.field({ type: DateTime, description: 'When the token expires (its exp).', resolve: (s) => s.expiresAt }),
  }),
});

builder.queryField('session', (t) =>
  t.field({ type: SessionInfo, nullable: true, description: 'Who the gateway thinks is calling.', resolve: (_root, _args, ctx) => ctx.session }),
);
