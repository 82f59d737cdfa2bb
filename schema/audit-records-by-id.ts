import { builder } from './builder.js';
import { AuditRecordRef } from './audit.js';
import { appNamed, badUserInput } from './errors.js';
import { RecordIdsInputError } from '../src/consent/records-by-id.js';

builder.queryField('auditRecordsByIds', (t) =>
  t.field({
    type: [AuditRecordRef],
    description:
      "An app's consent records by id (at most 500), in chain order: e.g. a subject's records read again after erasing them. Unknown ids, and other apps' records, are left out.",
    authScopes: { scope: 'audit:read' },
    args: { appid: t.arg.string(), ids: t.arg.idList() },
    resolve: async (_r, { appid, ids }, ctx) => {
      appNamed(ctx.services.apps, appid);
      try {
        return await ctx.services.auditLookup.byIds(appid, ids.map(String));
      } catch (e) {
        if (e instanceof RecordIdsInputError) throw badUserInput(e.message);
        throw e;
      }
    },
  }),
);
