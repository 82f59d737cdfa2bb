import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { QuotaRef } from './quota.js';
import type { WechatChargeAlert } from '../src/billing/wechat-events.js';
import { INT32_MAX } from '../src/util/int32.js';

const int32 = (v: number | null) => (v === null ? null : Math.min(INT32_MAX, Math.max(0, v)));

const WechatChargeAlertKindEnum = builder.enumType('WechatChargeAlertKind', {
  description: 'Which charge alert WeChat pushed.',
  values: {
    QUOTA: { description: 'Units running out (event_type 3): pushed at 20 %, 10 %, 5 % and 0 % left.' },
    EXPIRY: { description: 'A pack expiring (event_type 4): pushed 15, 7, 3 and 1 days before, and when it expires.' },
  },
});

const WechatChargeAlertRef = builder.objectRef<WechatChargeAlert>('WechatChargeAlert').implement({
  description: "A charge alert WeChat pushed to the app's message-push URL (/wechat/events/{appid}).",
  fields: (t) => ({
    kind: t.field({ type: WechatChargeAlertKindEnum, description: 'Quota running out, or a pack expiring.', resolve: (a) => (a.kind === 'quota' ? 'QUOTA' : 'EXPIRY') }),
    event: t.exposeString('event', { description: 'The event as WeChat named it (charge_service_quota_notify, charge_mp_service_validity_notify, …).' }),
    at: t.field({ type: DateTime, nullable: true, description: "The event's CreateTime.", resolve: (a) => a.eventAt }),
    receivedAt: t.field({ type: DateTime, description: 'When the gateway received it.', resolve: (a) => a.receivedAt }),
    spuId: t.exposeString('spuId', { nullable: true, description: 'The product WeChat named (spu_id).' }),
    spuName: t.exposeString('spuName', { nullable: true, description: 'The product as WeChat named it (spu_name).' }),
    totalQuota: t.int({ nullable: true, description: 'QUOTA: units of the product in effect (total_quota).', resolve: (a) => int32(a.totalQuota) }),
    totalUsed: t.int({ nullable: true, description: 'QUOTA: units of those used (total_used_quota).', resolve: (a) => int32(a.totalUsedQuota) }),
    remaining: t.int({ nullable: true, description: 'QUOTA: totalQuota − totalUsed, as WeChat counted when it pushed.', resolve: (a) => int32(a.remainingQuota) }),
    validityEndTime: t.exposeString('validityEndTime', { nullable: true, description: 'EXPIRY: validity_end_time as WeChat sent it.' }),
    validityEndsAt: t.field({ type: DateTime, nullable: true, description: 'EXPIRY: validity_end_time read as an instant (null when its form is unknown).', resolve: (a) => a.validityEndsAt }),
  }),
});

builder.objectField(QuotaRef, 'lastWechatAlert', (t) =>
  t.field({
    type: WechatChargeAlertRef,
    nullable: true,
    description: 'The latest quota or expiry alert WeChat pushed for this app (each one also triggers a usage sync); null before any.',
    resolve: (q, _a, ctx) => ctx.loaders.wechatAlert.load(q.appid),
  }),
);
