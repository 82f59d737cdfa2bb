import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { AppMismatchError, InvalidInputError } from '../src/phone/errors.js';
import { resolveApp } from '../src/phone/input.js';
import { checkButtonReport } from '../src/billing/client-reports.js';

const ButtonOutcomeEnum = builder.enumType('ButtonOutcome', {
  description: "What the getPhoneNumber button's callback gave the mini program.",
  values: {
    SUCCESS: { description: 'A code was issued (WeChat charged one unit).' },
    USER_DENY: { description: 'errMsg "getPhoneNumber:fail user deny" (or ":fail:user deny" on Android).' },
    NO_QUOTA: { description: 'errno 1400001: no quota left.' },
    PRIVACY: { description: 'errno 104 or 112: privacy agreement not authorised / API not declared.' },
    OTHER: { description: 'Any other failure (give errno).' },
  },
});

const OUTCOME = { SUCCESS: 'success', USER_DENY: 'user_deny', NO_QUOTA: 'no_quota', PRIVACY: 'privacy', OTHER: 'other' } as const;

const ReportButtonOutcomeInput = builder.inputType('ReportButtonOutcomeInput', {
  description: "What the button's callback gave, as the mini program saw it.",
  fields: (t) => ({
    outcome: t.field({ type: ButtonOutcomeEnum, description: 'How the tap ended.' }),
    errno: t.int({ required: false, description: "The callback's errno, for failures." }),
    code: t.string({ required: false, description: 'For SUCCESS: the code the button gave. Only its keyed hash is kept; it links the report to the code.' }),
    clientEventId: t.string({ required: false, description: 'Your id for this tap: a repeated report with the same id is counted once.' }),
    occurredAt: t.field({ type: DateTime, required: false, description: 'When the user tapped; defaults to now.' }),
    appid: t.string({ required: false, description: "The mini program; defaults to the session token's appid." }),
  }),
});

const Recorded = builder.objectRef<{ id: string; duplicate: boolean }>('ButtonOutcomeRecorded').implement({
  description: 'The report is recorded.',
  fields: (t) => ({
    id: t.exposeID('id', { description: "The report's id." }),
    duplicate: t.exposeBoolean('duplicate', { description: 'The same clientEventId was reported before: counted once.' }),
  }),
});

builder.mutationField('reportButtonOutcome', (t) =>
  t.field({
    type: Recorded,
    nullable: true,
    description: 'Tells the gateway what the button gave, so reconciliation can explain charges for codes it never saw.',
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: ReportButtonOutcomeInput, description: 'The report.' }) },
    errors: { types: [InvalidInputError, AppMismatchError], union: { name: 'ReportButtonOutcomeResult', description: 'The report recorded, or why it was refused.' } },
    resolve: async (_r, { input }, ctx) => {
      const { services, session } = ctx;
      const app = resolveApp(session, input.appid, services.apps);
      const now = services.now();
      const report = checkButtonReport({ ...input, outcome: OUTCOME[input.outcome] }, now);
      return services.billing.reports.record({
        appid: app.appid,
        subjectHash: services.keys.subjectHash(session.issuer, session.subject),
        outcome: report.outcome,
        errno: report.errno,
        clientEventId: report.clientEventId,
        codeHash: report.code ? services.keys.codeHash('phone', report.code) : null,
        occurredAt: report.occurredAt,
        now,
      });
    },
  }),
);
