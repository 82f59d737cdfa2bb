/**
 * Table types for Kysely. Times are epoch milliseconds (bigint columns) and
 * booleans are 0/1 integers so that SQLite and PostgreSQL read the same values.
 */
export interface CodeClaimsTable {
  /** Keyed hash of (appid, code): the code itself is never stored. */
  code_hash: string;
  appid: string;
  /** Keyed hash of the session subject that claimed the code. */
  subject_hash: string;
  purpose: string;
  state: 'pending' | 'succeeded' | 'failed';
  /** Incremented on each takeover, so a stale owner cannot overwrite a newer attempt's outcome. */
  attempt: number;
  lease_until: number;
  error_code: string | null;
  /** Whether the stored failure may be retried by the same session (1) or is final (0). */
  error_retryable: number;
  /** 1 once an attempt took the claim over from an owner that ended without an outcome (see ClaimResult). */
  earlier_attempt_lost: number;
  /** Sealed (AES-GCM) answer for replays; emptied after answer_expires_at. */
  answer_sealed: string | null;
  answer_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface PacksTable {
  id: string;
  /** Every pack is an app's: bought in its console, or assigned to it from a service provider's order (assignment_id). */
  owner_kind: 'app';
  /** The appid. */
  owner_id: string;
  product: 'quick' | 'realtime';
  units_all: number;
  units_used: number;
  paid_at: number;
  effective_at: number;
  expires_at: number;
  validity_days: number;
  /** What was paid for the pack, in milli-yuan (厘); 0 for an assigned pack (its order was paid). */
  price_paid_milli: number;
  /** The pack's id in WeChat's usage API, when known (for an assigned pack, the result's receive_pkg_id). */
  wechat_pkg_id: string | null;
  refund_state: 'requested' | null;
  refund_requested_at: number | null;
  /** The procurement assignment the pack came from; null for a pack the app bought. */
  assignment_id: string | null;
  created_at: number;
}

/** A service provider's order of wholesale packs (集采), as WeChat's order/get shows it. */
export interface ProcurementOrdersTable {
  /** WeChat's orderId ("DD…"). */
  order_id: string;
  product: 'quick' | 'realtime';
  /** orderProductInfo.spSpuId / spSkuId: the wholesale product bought, when known. */
  sp_spu_id: string | null;
  sp_sku_id: string | null;
  /** orderProductInfo.skuCnt: wholesale SKUs bought, when known. */
  sku_cnt: number | null;
  /** usage.all: the units the order holds. */
  units_all: number;
  /** What was paid, in milli-yuan (厘), as decimal digits: 64-bit amounts stay exact. */
  price_paid_milli: string;
  /** payInfo.finishPayTime. */
  paid_at: number;
  /** createTime (WeChat's), when known. */
  wechat_created_at: number | null;
  /** orderProductInfo.validityBeginTime / validity: when the order's units may be assigned, when known. */
  validity_begin_at: number | null;
  validity_end_at: number | null;
  recorded_at: number;
}

/** A retail SKU an order converts to (get_convertible_skus): the pack an assignment gives an app. */
export interface ProcurementOrderSkusTable {
  order_id: string;
  sku_id: string;
  spu_id: string | null;
  sku_name: string | null;
  /** attr.proportion.quota.quota: units in one pack of this SKU. */
  units: number;
  /** attr.duration: the pack's validity in seconds. */
  duration_seconds: number;
}

/** One assignment of a pack of an order's SKU to an app (package/assign), keyed by WeChat's (orderId, requestId). */
export interface ProcurementAssignmentsTable {
  id: string;
  order_id: string;
  request_id: string;
  sku_id: string;
  receiver_appid: string;
  /** beginTime of the request (ms), when given. */
  begin_time: number | null;
  /** The SKU's pack size when requested: what the assignment holds of its order. */
  units: number;
  duration_seconds: number;
  state: 'requested' | 'assigned' | 'failed' | 'cancelled';
  /** WeChat's errcode for a failed assignment (e.g. 10045: no relationship with the app). */
  errcode: number | null;
  /** The assigned pack's id at WeChat (the result event's receive_pkg_id), when known. */
  receive_pkg_id: string | null;
  /** The app's pack, while assigned. */
  pack_id: string | null;
  requested_at: number;
  /** When WeChat's result (assigned or failed) was recorded, and when the assignment took effect. */
  settled_at: number | null;
  assigned_at: number | null;
  cancelled_at: number | null;
  updated_at: number;
}

export interface AppTrialsTable {
  appid: string;
  trial_used: number;
  updated_at: number;
}

export interface ChargesTable {
  /** Same key as the code's claim: one charge per code, ever. */
  code_hash: string;
  appid: string;
  product: 'quick' | 'realtime';
  /** confirmed: exchanged (errcode 0); unconfirmed: rejected with 40029 (expired, so charged, or bogus). */
  status: 'confirmed' | 'unconfirmed';
  /** Where a confirmed charge was drawn from; null for unconfirmed ones (not drawn). */
  source: 'trial' | 'pack' | 'exempt' | 'unfunded' | null;
  pack_id: string | null;
  /** List price of the call in milli-yuan (0 for trial and exempt). */
  price_milli: number;
  /**
   * When the user tapped (the answer's watermark): WeChat charges at the tap, so this, not the
   * exchange time, says whether a usage sync already counted the charge. Null when unknown.
   */
  tapped_at: number | null;
  created_at: number;
}

export interface ClientReportsTable {
  id: string;
  appid: string;
  outcome: 'success' | 'user_deny' | 'no_quota' | 'privacy' | 'other';
  errno: number | null;
  client_event_id: string | null;
  /** Keyed hash of the reported code (same key as its claim), when the backend sent the code. */
  code_hash: string | null;
  subject_hash: string;
  occurred_at: number;
  created_at: number;
}

export interface UsageSnapshotsTable {
  id: string;
  appid: string;
  synced_at: number;
  /** 64-bit counters from WeChat, kept as decimal strings to stay exact. */
  all_units: string;
  effective_use: string;
  trial_all: number;
  trial_used: number;
  /** Before 0007 only (a daily figure the adapter once expected); no longer written. */
  recent_average: string | null;
  /** JSON of the detail rows (packs as WeChat sees them). */
  details: string;
  /** From 0007 on; null in older snapshots. Σ (all − used) over rows in effect, exact. */
  remaining_units: string | null;
  /** Σ all over rows in effect: the base of the default low-quota mark. */
  units_in_effect: string | null;
  trial_remaining: number | null;
  /** WeChat's averageData: average monthly use, fuzzed upward (a bound, per month). */
  monthly_average: string | null;
  /** effectiveUse growth since the previous snapshot beyond the gateway's confirmed charges. */
  unseen_units: number | null;
  /** The observed-rate state (src/billing/rules.ts UsageRate) as of synced_at. */
  rate_weighted_units: string | null;
  rate_weighted_ms: string | null;
}

export interface QuotaAlertsTable {
  appid: string;
  low: number;
  changed_at: number;
  notified_at: number | null;
}

/**
 * What WeChat pushed to an app's message-push URL, one row per event however often WeChat
 * retried it. Charge alerts keep their fields; other events keep only their name, and only for
 * as long as a retry could arrive. Never the sender's openid (FromUserName) or other personal data.
 */
export interface WechatEventsTable {
  /** Keyed hash of what identifies the event (MsgId, else sender, time, name and the alert's fields). */
  id: string;
  appid: string;
  kind: 'quota_alert' | 'expiry_alert' | 'other';
  /** The event's name as WeChat sent it (MsgType for messages that are not events). */
  event: string;
  /** The event's CreateTime (ms); null when it had none. */
  event_at: number | null;
  received_at: number;
  /** The alert's fields (JSON, see src/billing/wechat-events.ts); null for other events. */
  fields: string | null;
}

export interface AuditRecordsTable {
  id: string;
  appid: string;
  /** Position in the app's chain, from 1. */
  seq: number;
  kind: 'exchange' | 'withdrawal' | 'consent' | 'erasure' | 'checkpoint';
  flow: 'exchange' | 'legacy' | null;
  purpose: string | null;
  notice_version: string | null;
  request_id: string | null;
  outcome: 'disclosed' | 'replayed' | 'refused' | null;
  error_code: string | null;
  /** Personal data, redacted (NULL) on erasure: keyed hashes and a masked number, never the number. */
  subject_hash: string | null;
  masked_phone: string | null;
  phone_hash: string | null;
  /** Keyed digest of the personal fields (and the request id): chained instead of them, so erasure keeps the chain whole. */
  personal_digest: string | null;
  /** Random salt of the digest; erasure clears it, so the digest can no longer be checked against a guess. */
  digest_salt: string | null;
  /** JSON for kinds that need more (checkpoints, erasures). */
  detail: string | null;
  at: number;
  prev_hash: string;
  hash: string;
  erased_at: number | null;
}

export interface AuditHeadsTable {
  appid: string;
  last_seq: number;
  last_hash: string;
  /** Keyed MAC of (appid, last_seq, last_hash): the head cannot be moved without the key. */
  head_mac: string;
}

export interface ConsentsTable {
  appid: string;
  subject_hash: string;
  purpose: string;
  state: 'withdrawn' | 'given';
  updated_at: number;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  /** JSON of the public JWK (with kid, alg, use). */
  public_jwk: string;
  /** The private JWK, sealed (AES-GCM) with a key derived from WXPHONE_DATA_KEY. */
  private_sealed: string;
  created_at: number;
  /** No token is signed with the key from then on. */
  retire_at: number;
  /** The key leaves the JWKS then: after every token it signed has expired. */
  drop_at: number;
}

export interface Database {
  code_claims: CodeClaimsTable;
  packs: PacksTable;
  procurement_orders: ProcurementOrdersTable;
  procurement_order_skus: ProcurementOrderSkusTable;
  procurement_assignments: ProcurementAssignmentsTable;
  app_trials: AppTrialsTable;
  charges: ChargesTable;
  client_reports: ClientReportsTable;
  usage_snapshots: UsageSnapshotsTable;
  quota_alerts: QuotaAlertsTable;
  wechat_events: WechatEventsTable;
  audit_records: AuditRecordsTable;
  audit_heads: AuditHeadsTable;
  consents: ConsentsTable;
  signing_keys: SigningKeysTable;
}
