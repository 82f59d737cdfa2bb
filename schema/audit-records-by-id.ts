import { builder } from './builder.js';
import { AuditRecordRef } from './audit.js';
import { appNamed, badUserInput } from './errors.js';
import { keyOfGlobalId } from './node.js';
import { MAX_RECORD_IDS, RecordIdsInputError } from '../src/consent/records-by-id.js';

builder.queryField('auditRecordsByIds', (t) =>
  t.field({
    type: [AuditRecordRef],
    nullable: true,
    description:
      "An app's consent records by id (at most 500), in chain order: e.g. a subject's records read again after erasing them. Unknown ids, and other apps' records, are left out.",
    authScopes: { scope: 'audit:read' },
    args: {
      appid: t.arg.string({ description: 'The app whose log to read.' }),
      ids: t.arg.idList({ description: 'AuditRecord ids (the id field), at most 500.' }),
    },
    resolve: async (_r, { appid, ids }, ctx) => {
      appNamed(ctx.services.apps, appid);
      if (new Set(ids).size > MAX_RECORD_IDS) throw badUserInput(`at most ${MAX_RECORD_IDS} ids`);
      // Only this app's records: an id naming another app's record is left out like an unknown one.
      const recordIds = ids.flatMap((id) => {
        const key = keyOfGlobalId(String(id), 'AuditRecord');
        return key && key[0] === appid && key[1] ? [key[1]] : [];
      });
      try {
        return await ctx.services.auditLookup.byIds(appid, recordIds);
      } catch (e) {
        if (e instanceof RecordIdsInputError) throw badUserInput(e.message);
        throw e;
      }
    },
  }),
);
