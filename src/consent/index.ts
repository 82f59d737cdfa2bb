/**
 * The consent audit (PIPL): per-app, hash-chained, append-only records of every exchange,
 * withdrawal, consent, erasure and retention checkpoint. `ConsentAudit` is what the exchange
 * and the schema use; `chain.ts` holds the chain itself.
 */
export { ConsentAudit, toExport } from './audit.js';
export type { AuditFilter, AuditPage, ConsentAuditOptions, ErasableRows, ExchangeAuditEvent, RequestConsentLog, StoredAnswers, SubjectErasure } from './audit.js';
export { appendRecord, verifyChain, purgeBefore, GENESIS } from './chain.js';
export type { AuditEntry, ChainVerification, ChainWriter } from './chain.js';
