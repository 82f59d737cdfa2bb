import { cstDayNumber } from '../billing/rules.js';
import { newAccessToken } from './random.js';

/**
 * Access tokens with WeChat's lifetimes. Stable tokens
 * (/cgi-bin/stable_token) and plain tokens (/cgi-bin/token) live side by side
 * and never affect each other.
 */

export const TOKEN_TTL_MS = 7_200_000;
/** Stable tokens rotate this long before expiry; plain tokens overlap their successor this long. */
export const TOKEN_OVERLAP_MS = 300_000;
export const FORCE_REFRESH_PER_DAY = 20;
export const FORCE_REFRESH_SPACING_MS = 30_000;

export type TokenKind = 'stable' | 'plain';

interface TokenRecord {
  value: string;
  appid: string;
  kind: TokenKind;
  issuedAt: number;
  expiresAt: number;
  /** Set when a newer token replaced this one: it stops working from here. */
  invalidFrom: number | undefined;
}

interface AppTokens {
  stableCurrent: TokenRecord | undefined;
  /** Stable tokens a forced refresh must kill (current and any still in overlap). */
  stableLive: TokenRecord[];
  plainLatest: TokenRecord | undefined;
  forcedDay: number;
  forcedToday: number;
  lastForcedAt: number | undefined;
}

export interface IssuedToken {
  access_token: string;
  expires_in: number;
}

export type TokenCheck = { ok: true; appid: string } | { ok: false; errcode: 40001 | 40014 | 42001 };

export interface TokenCounters {
  stable: number;
  plain: number;
  forced: number;
}

export class TokenBook {
  private readonly byValue = new Map<string, TokenRecord>();
  private readonly byApp = new Map<string, AppTokens>();
  /** New tokens issued, one bucket per way of issuing: normal stable, plain, forced stable. */
  readonly issued: TokenCounters = { stable: 0, plain: 0, forced: 0 };

  /**
   * /cgi-bin/stable_token. Normal mode returns the current token with its
   * remaining lifetime while more than 300 s are left, else issues a new one
   * and lets the old one live out its lifetime. Force mode issues a new one
   * and kills every earlier stable token at once, within its rate limits.
   */
  stable(appid: string, force: boolean, now: number): IssuedToken | { errcode: 45009 | 45011 } {
    const app = this.appTokens(appid);
    if (!force) {
      const current = app.stableCurrent;
      if (current && current.invalidFrom === undefined && current.expiresAt - now > TOKEN_OVERLAP_MS) {
        return { access_token: current.value, expires_in: Math.floor((current.expiresAt - now) / 1000) };
      }
      this.issued.stable++;
      return this.answer(this.issueStable(app, appid, now), now);
    }

    const today = cstDayNumber(now);
    if (app.forcedDay !== today) {
      app.forcedDay = today;
      app.forcedToday = 0;
    }
    if (app.forcedToday >= FORCE_REFRESH_PER_DAY) return { errcode: 45009 };
    if (app.lastForcedAt !== undefined && now - app.lastForcedAt < FORCE_REFRESH_SPACING_MS) return { errcode: 45011 };
    app.forcedToday++;
    app.lastForcedAt = now;
    for (const old of app.stableLive) {
      if (old.invalidFrom === undefined || old.invalidFrom > now) old.invalidFrom = now;
    }
    app.stableLive = [];
    this.issued.forced++;
    return this.answer(this.issueStable(app, appid, now), now);
  }

  /** /cgi-bin/token: always a new token; the previous one stops working 300 s later (or at its expiry). */
  plain(appid: string, now: number): IssuedToken {
    const app = this.appTokens(appid);
    const previous = app.plainLatest;
    if (previous) {
      const cutoff = Math.min(now + TOKEN_OVERLAP_MS, previous.expiresAt);
      if (previous.invalidFrom === undefined || previous.invalidFrom > cutoff) previous.invalidFrom = cutoff;
    }
    const record = this.record(appid, 'plain', now);
    app.plainLatest = record;
    this.issued.plain++;
    return this.answer(record, now);
  }

  /**
   * The check every business call makes. A token replaced before its expiry
   * is 40001 from the replacement on; one that simply ran out is 42001. The
   * optional appid makes another app's token a 40001 as well.
   */
  check(value: string | null | undefined, now: number, expectedAppid?: string): TokenCheck {
    const record = value ? this.byValue.get(value) : undefined;
    if (!record) return { ok: false, errcode: 40014 };
    const { invalidFrom, expiresAt } = record;
    if (invalidFrom !== undefined && invalidFrom < expiresAt && now >= invalidFrom) return { ok: false, errcode: 40001 };
    if (now >= expiresAt) return { ok: false, errcode: 42001 };
    if (expectedAppid !== undefined && record.appid !== expectedAppid) return { ok: false, errcode: 40001 };
    return { ok: true, appid: record.appid };
  }

  clear(): void {
    this.byValue.clear();
    this.byApp.clear();
    this.issued.stable = 0;
    this.issued.plain = 0;
    this.issued.forced = 0;
  }

  private issueStable(app: AppTokens, appid: string, now: number): TokenRecord {
    const record = this.record(appid, 'stable', now);
    // Only tokens that can still work need killing by a later forced refresh.
    app.stableLive = app.stableLive.filter((t) => t.expiresAt > now && (t.invalidFrom === undefined || t.invalidFrom > now));
    app.stableLive.push(record);
    app.stableCurrent = record;
    return record;
  }

  private record(appid: string, kind: TokenKind, now: number): TokenRecord {
    let value = newAccessToken();
    while (this.byValue.has(value)) value = newAccessToken();
    const record: TokenRecord = { value, appid, kind, issuedAt: now, expiresAt: now + TOKEN_TTL_MS, invalidFrom: undefined };
    this.byValue.set(value, record);
    return record;
  }

  private answer(record: TokenRecord, now: number): IssuedToken {
    return { access_token: record.value, expires_in: Math.floor((record.expiresAt - now) / 1000) };
  }

  private appTokens(appid: string): AppTokens {
    let app = this.byApp.get(appid);
    if (!app) {
      app = { stableCurrent: undefined, stableLive: [], plainLatest: undefined, forcedDay: -1, forcedToday: 0, lastForcedAt: undefined };
      this.byApp.set(appid, app);
    }
    return app;
  }
}
