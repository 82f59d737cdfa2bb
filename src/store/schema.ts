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
  /** Sealed (AES-GCM) answer for replays; emptied after answer_expires_at. */
  answer_sealed: string | null;
  answer_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface Database {
  code_claims: CodeClaimsTable;
}
