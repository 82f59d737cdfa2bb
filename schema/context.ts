import type DataLoader from 'dataloader';
import type { AppConfig } from '../src/config.js';
import type { DataKeys } from '../src/crypto/keys.js';
import type { Session } from '../src/auth/index.js';
import type { PhoneService } from '../src/phone/exchange.js';
import type { BillingLedger } from '../src/billing/ledger.js';
import type { Procurement } from '../src/billing/procurement.js';
import type { UsageSync } from '../src/billing/usage-sync.js';
import type { Quota, QuotaService } from '../src/billing/quota.js';
import type { ClientReports } from '../src/billing/client-reports.js';
import type { Reconciliation } from '../src/billing/reconciliation.js';
import type { ConsentAudit, RequestConsentLog } from '../src/consent/index.js';
import type { RequestAccessTokens } from '../src/wechat/index.js';
import type { VerificationTokens } from '../src/binding/index.js';
import type { WechatChargeAlert, WechatEvents } from '../src/billing/wechat-events.js';
import type { UsageHistoryService } from '../src/billing/usage-history.js';
import type { OutcomeHistoryService } from '../src/phone/outcome-history.js';
import type { AuditRecordLookup } from '../src/consent/records-by-id.js';

/** What resolvers may use: the verified session and the domain services (no I/O clients directly). */
export interface Services {
  phone: PhoneService;
  keys: DataKeys;
  apps: ReadonlyMap<string, AppConfig>;
  now: () => number;
  /** The session tokens' issuer: subject hashes are scoped by it. */
  issuer: string;
  audit: ConsentAudit;
  /** Consent records by id (a page reading erased records again). */
  auditLookup: AuditRecordLookup;
  /** Exchange outcomes over time, counted from the consent log. */
  exchangeOutcomes: OutcomeHistoryService;
  tokens: VerificationTokens;
  billing: {
    ledger: BillingLedger;
    usage: UsageSync;
    quota: QuotaService;
    reports: ClientReports;
    reconciliation: Reconciliation;
    wechatEvents: WechatEvents;
    procurement: Procurement;
    usageHistory: UsageHistoryService;
  };
}

/** Per-request batch loaders: every quota asked for in one request is one database query. */
export interface Loaders {
  quota: DataLoader<string, Quota>;
  /** Each app's latest charge alert pushed by WeChat (null: none yet). */
  wechatAlert: DataLoader<string, WechatChargeAlert | null>;
}

export interface GraphQLContext {
  request: Request;
  session: Session;
  services: Services;
  loaders: Loaders;
  requestId: string;
  /** The shared access-token cache, bound to this request (plugins/access-tokens). */
  accessTokens: RequestAccessTokens;
  /** The consent log, bound to this request and its session's subject (plugins/consent-audit). */
  consentLog: RequestConsentLog;
  /** The client's address as the HTTP layer determined it (absent for in-process requests). */
  clientIp?: string | undefined;
}
