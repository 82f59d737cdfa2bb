import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database, PacksTable } from '../store/schema.js';
import { preparedQuery } from '../store/prepared.js';
import { insertCharge, inserted, type ChargeValues, type LedgerStatements } from '../store/ledger/index.js';
import { NOT_ASSIGNED, billingPack, packOf, type Pack } from './packs.js';
import {
  type BillingPack,
  type RefundRule,
  TRIAL_UNITS,
  exemption,
  packEffectiveAt,
  packExpiresAt,
  planCharge,
  refundDecision,
  DAY_MS,
  LIST_PRICE_MILLI,
} from './rules.js';

export class LedgerInputError extends Error {
  override name = 'LedgerInputError';
}

export interface ChargeRecord {
  codeHash: string;
  appid: string;
  status: 'confirmed' | 'unconfirmed';
  source: 'trial' | 'pack' | 'exempt' | 'unfunded' | null;
  packId: string | null;
  priceMilli: number;
  /** False when the code had been recorded before: nothing was drawn this time. */
  recorded: boolean;
}

export interface PackPurchase {
  owner: { kind: 'app'; appid: string };
  units: number;
  paidAt: number;
  validityDays: number;
  pricePaidMilli: number;
  wechatPkgId?: string | null;
}

export type RefundOutcome = { ok: true; pack: Pack } | { ok: false; rule: RefundRule };

/** What may be drawn from packs at all: a sanity bound far beyond any real pack, well inside GraphQL Int. */
export const MAX_PACK_UNITS = 1_000_000_000;
/** The earliest payment a pack or order may be recorded with. */
export const EARLIEST_PAYMENT = Date.UTC(2020, 0, 1);

// A draw that loses a race for a pack's last unit re-reads and tries the next pack; bounded.
const MAX_DRAW_ROUNDS = 8;
const MAX_VALIDITY_DAYS = 3650;

/** An app's drawable packs as read before a charge's transaction (see BillingLedger.drawableAhead). */
export interface DrawableAhead {
  readonly candidates: readonly DrawCandidate[];
}

type DrawCandidate = BillingPack & { id: string };

/**
 * The gateway's mirror of WeChat's charges. Every code the gateway sees gets one
 * charge row (keyed like its claim, so never two), and a confirmed charge draws one
 * unit in WeChat's order: exempt → trial → the in-effect pack that expires soonest
 * (bought or assigned: an assigned pack is one of the app's packs). Draws are conditional updates (`used < all`), so concurrent
 * exchanges never overdraw, on SQLite or PostgreSQL.
 */
export class BillingLedger {
  /**
   * Apps whose trial this process has seen spent. A trial counter only moves up (draws, and
   * alignment with WeChat's count), so a spent trial stays spent: their draws skip the trial
   * statement, one round trip fewer per charge for nearly every app in steady state.
   */
  private readonly trialSpent = new Set<string>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly statements: LedgerStatements,
    private readonly apps: ReadonlyMap<string, AppConfig>,
    private readonly opts: { chargingStartDate?: string } = {},
  ) {}

  /** Makes sure every configured app has its trial counter row (the driving table of quota queries). */
  async registerApps(now: number): Promise<void> {
    for (const appid of this.apps.keys()) {
      await this.db
        .insertInto('app_trials')
        .values({ appid, trial_used: 0, updated_at: now })
        .onConflict((oc) => oc.column('appid').doNothing())
        .execute();
    }
  }

  /**
   * Records what the gateway saw of one code, inside the caller's transaction (the one
   * that settles the code's claim). Confirmed charges draw a unit; unconfirmed ones
   * (40029: an expired code was charged, a bogus one was not) are recorded, not drawn.
   */
  async recordCharge(
    trx: Kysely<Database>,
    c: { codeHash: string; appid: string; status: 'confirmed' | 'unconfirmed'; now: number; tappedAt?: number | null; drawable?: DrawableAhead },
  ): Promise<ChargeRecord> {
    const app = this.app(c.appid);
    const fields = { codeHash: c.codeHash, appid: c.appid, product: app.product, status: c.status, tappedAt: c.tappedAt ?? null, now: c.now };
    if (c.status === 'unconfirmed') {
      if (!inserted(await insertCharge(trx, { ...fields, source: null, packId: null, priceMilli: 0 }))) return this.recordedBefore(trx, c.codeHash);
      return { codeHash: c.codeHash, appid: c.appid, status: 'unconfirmed', source: null, packId: null, priceMilli: 0, recorded: true };
    }
    // A trial or pack unit is drawn together with the charge's insert (one statement where the
    // database allows): the charge goes in once with its source, and as few statements as can be
    // run while the drawn row is locked, which every charge of the app waits for.
    const draw = await this.draw(trx, app, fields, c.drawable);
    const priceMilli = priceOf(draw.source, app);
    const charged = draw.charged ?? inserted(await insertCharge(trx, { ...fields, source: draw.source, packId: draw.packId, priceMilli }));
    if (!charged) {
      // The code was charged before (an earlier settlement of it): the unit goes back. This
      // transaction holds the row it drew from until it ends, so the count is exactly restored.
      await this.undraw(trx, app.appid, draw);
      return this.recordedBefore(trx, c.codeHash);
    }
    return { codeHash: c.codeHash, appid: c.appid, status: 'confirmed', source: draw.source, packId: draw.packId, priceMilli, recorded: true };
  }

  private async recordedBefore(trx: Kysely<Database>, codeHash: string): Promise<ChargeRecord> {
    const existing = await trx.selectFrom('charges').selectAll().where('code_hash', '=', codeHash).executeTakeFirstOrThrow();
    return { ...toRecord(existing), recorded: false };
  }

  private async undraw(trx: Kysely<Database>, appid: string, draw: { source: NonNullable<ChargeRecord['source']>; packId: string | null }): Promise<void> {
    if (draw.source === 'trial') {
      await trx.updateTable('app_trials').set({ trial_used: sql`trial_used - 1` }).where('appid', '=', appid).execute();
    } else if (draw.source === 'pack') {
      await trx.updateTable('packs').set({ units_used: sql`units_used - 1` }).where('id', '=', draw.packId!).execute();
    }
  }

  /**
   * Draws the unit the consumption rules (planCharge) say this charge takes. A trial or pack draw
   * also inserts the charge and says whether it did (`charged`); an exempt or unfunded charge
   * leaves the insert to the caller.
   */
  private async draw(
    trx: Kysely<Database>,
    app: AppConfig,
    charge: Omit<ChargeValues, 'source' | 'packId' | 'priceMilli'>,
    ahead?: DrawableAhead,
  ): Promise<{ source: NonNullable<ChargeRecord['source']>; packId: string | null; charged?: boolean }> {
    const exempt = exemption({ subjectType: app.subjectType, category: app.category }).exempt;
    // The facts each plan is made from, as far as the ledger knows them. The trial's count is not
    // read: the least it can be is none used, or all once a draw found it spent (it only moves up),
    // and a trial draw is conditional on a unit being left. No packs are read while the trial may
    // last (the rules take the trial first, whatever the packs); after it, the first round may plan
    // from a read made ahead (see drawableAhead), and every later one reads again here.
    let trialUsed = this.trialSpent.has(app.appid) ? TRIAL_UNITS : 0;
    let packs: readonly DrawCandidate[] = [];
    let readHere = false;
    for (let lists = 0; ; lists++) {
      const plan = planCharge({ exempt, trialUsed, packs, nowMs: charge.now });
      if (plan.source === 'exempt') return { source: 'exempt', packId: null };
      if (plan.source === 'trial') {
        // One statement draws a trial unit: the first for an app without a counter row, else the
        // next while any is left (a conditional update, so concurrent draws never pass the limit).
        const trial = { ...charge, source: 'trial', packId: null, priceMilli: priceOf('trial', app), trialUnits: TRIAL_UNITS } as const;
        const charged = await this.statements.drawTrialUnitAndCharge(trx, trial);
        if (charged !== null) return { source: 'trial', packId: null, charged };
        // The update found the committed count at the limit (it waits for any draw in flight).
        this.trialSpent.add(app.appid);
        trialUsed = TRIAL_UNITS;
      } else if (plan.source === 'pack') {
        // The update re-checks what the read saw: a refund, an expiry or a cancelled assignment
        // (its pack deleted) committed meanwhile wins, and the next round reads again.
        const charged = await this.statements.drawPackUnitAndCharge(trx, { ...charge, source: 'pack', packId: plan.pack.id, priceMilli: priceOf('pack', app) });
        if (charged !== null) return { source: 'pack', packId: plan.pack.id, charged };
      } else if (readHere) {
        break; // no pack in effect has a unit left
      }
      // The trial is spent, the packs planned from were not read yet or read ahead (which may miss
      // a pack recorded since), or the unit chosen was gone: the next round plans from packs read
      // here (the first from the read made ahead, if there is one). Races lost are retried, bounded.
      if (lists === MAX_DRAW_ROUNDS) break;
      const fromAhead = lists === 0 && ahead !== undefined;
      packs = fromAhead ? ahead.candidates : await this.drawable(trx, app.appid);
      readHere = !fromAhead;
    }
    // WeChat issued the code, so it charged something the mirror has no units for: the
    // mirror is behind (a pack not recorded here). Reconciliation and quota show it.
    return { source: 'unfunded', packId: null };
  }

  /**
   * The app's drawable units, read ahead of a charge and outside its transaction (while WeChat
   * answers the exchange), for its first draw round: on PostgreSQL a round trip fewer inside the
   * settlement, where the app's rows are about to be locked. Every draw re-checks the unit it takes
   * (left, in effect, not refunded), so a read ahead can only be out of date about a pack recorded
   * meanwhile that would have come first: that one charge then draws the next pack in order, as it
   * would have had it been taken a moment earlier. Undefined while the app's trial lasts or it is
   * exempt (those draws read nothing).
   */
  async drawableAhead(appid: string): Promise<DrawableAhead | undefined> {
    const app = this.apps.get(appid);
    if (!app || !this.trialSpent.has(appid) || exemption({ subjectType: app.subjectType, category: app.category }).exempt) return undefined;
    return { candidates: await this.drawable(this.db, appid) };
  }

  /** The app's packs with units left (bought and assigned), shaped for the consumption-order rules. */
  private async drawable(db: Kysely<Database>, appid: string): Promise<DrawCandidate[]> {
    const { rows } = await drawablePacks(db, { appid });
    return rows.map((r) => ({ ...billingPack(r.id, r), id: r.id }));
  }

  /**
   * WeChat is the truth about units: after a usage sync, the trial counter and every pack
   * linked to a WeChat pack id take WeChat's used counts (they include charges for codes the
   * gateway never saw). Counts only move up: a draw recorded here but not yet in WeChat's
   * numbers (sync lag) is not undone.
   */
  async alignWithWechat(appid: string, snapshot: { trialUsed: number; details: { pkgId: string; used: string; trial: boolean }[] }, now: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('app_trials')
        .set({ trial_used: snapshot.trialUsed, updated_at: now })
        .where('appid', '=', appid)
        .where('trial_used', '<', snapshot.trialUsed)
        .execute();
      for (const d of snapshot.details) {
        if (d.trial || d.pkgId === '') continue;
        const used = Number(d.used);
        if (!Number.isSafeInteger(used)) continue;
        await trx
          .updateTable('packs')
          .set({ units_used: sql`case when ${used} > units_all then units_all else ${used} end` })
          .where('owner_kind', '=', 'app')
          .where('owner_id', '=', appid)
          .where('wechat_pkg_id', '=', d.pkgId)
          .where('units_used', '<', used)
          .execute();
      }
    });
  }

  async recordPackPurchase(input: PackPurchase, now: number): Promise<Pack> {
    if (!Number.isSafeInteger(input.units) || input.units <= 0 || input.units > MAX_PACK_UNITS) {
      throw new LedgerInputError(`units must be a whole number from 1 to ${MAX_PACK_UNITS}`);
    }
    if (!Number.isSafeInteger(input.validityDays) || input.validityDays <= 0 || input.validityDays > MAX_VALIDITY_DAYS) {
      throw new LedgerInputError(`validityDays must be a whole number from 1 to ${MAX_VALIDITY_DAYS}`);
    }
    if (input.paidAt < EARLIEST_PAYMENT || input.paidAt > now + DAY_MS) throw new LedgerInputError('paidAt must be between 2020-01-01 and tomorrow');
    if (!Number.isSafeInteger(input.pricePaidMilli) || input.pricePaidMilli < 0) throw new LedgerInputError('pricePaidMilli must be a non-negative integer');
    const product = this.app(input.owner.appid).product;
    const effectiveAt = packEffectiveAt(input.paidAt, this.opts.chargingStartDate);
    const row: PacksTable = {
      id: `pk_${randomUUID()}`,
      owner_kind: 'app',
      owner_id: input.owner.appid,
      product,
      units_all: input.units,
      units_used: 0,
      paid_at: input.paidAt,
      effective_at: effectiveAt,
      expires_at: packExpiresAt(effectiveAt, input.validityDays),
      validity_days: input.validityDays,
      price_paid_milli: input.pricePaidMilli,
      wechat_pkg_id: input.wechatPkgId ?? null,
      refund_state: null,
      refund_requested_at: null,
      assignment_id: null,
      created_at: now,
    };
    await this.db.insertInto('packs').values(row).execute();
    return packOf(row, NOT_ASSIGNED, now);
  }

  /**
   * Records a refund request when WeChat's rules allow one (7 days, no unit used). The
   * gateway tracks the request; the money moves in WeChat's console, 3–5 working days later.
   */
  async requestRefund(packId: string, now: number): Promise<RefundOutcome> {
    return this.db.transaction().execute(async (trx) => {
      // Lock first: a draw in flight holds this row until it commits, so the use read below sees it.
      await this.lockPack(trx, packId);
      const pack = await trx.selectFrom('packs').selectAll().where('id', '=', packId).executeTakeFirst();
      if (!pack) throw new LedgerInputError('no such pack');
      // Its service provider paid for it, and takes it back by cancelling the assignment.
      if (pack.assignment_id !== null) throw new LedgerInputError('an assigned pack is not refunded: its service provider cancels the assignment (cancelPackAssignment)');
      const decision = refundDecision({ paidAt: pack.paid_at, used: pack.units_used, refundState: pack.refund_state }, now);
      if (!decision.refundable) return { ok: false, rule: decision.rule } as const;
      // Conditional on no unit drawn meanwhile: a draw and a refund must not both win.
      const r = await trx
        .updateTable('packs')
        .set({ refund_state: 'requested', refund_requested_at: now })
        .where('id', '=', packId)
        .where('refund_state', 'is', null)
        .where('units_used', '=', 0)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return { ok: false, rule: 'PACK_USED' } as const;
      return { ok: true, pack: packOf({ ...pack, refund_state: 'requested', refund_requested_at: now }, NOT_ASSIGNED, now) } as const;
    });
  }

  /** The app's packs (bought and assigned) with their status now, in the order they are drawn. */
  async packsFor(appid: string, now: number): Promise<Pack[]> {
    this.app(appid);
    const rows = await this.db
      .selectFrom('packs as p')
      .leftJoin('procurement_assignments as a', 'a.id', 'p.assignment_id')
      .selectAll('p')
      .select(['a.order_id', 'a.request_id'])
      .where('p.owner_kind', '=', 'app')
      .where('p.owner_id', '=', appid)
      .execute();
    const views = rows.map((p) => packOf(p, { orderId: p.order_id, requestId: p.request_id }, now));
    return views.sort((a, b) => a.expiresAt - b.expiresAt || a.effectiveAt - b.effectiveAt || a.id.localeCompare(b.id));
  }

  /**
   * Takes the pack's row lock until the transaction ends (a no-op update: portable, where
   * SELECT … FOR UPDATE is not; SQLite transactions are serial anyway).
   */
  private async lockPack(trx: Kysely<Database>, packId: string): Promise<void> {
    await trx.updateTable('packs').set({ units_used: sql`units_used` }).where('id', '=', packId).execute();
  }

  private app(appid: string): AppConfig {
    const app = this.apps.get(appid);
    if (!app) throw new LedgerInputError(`app ${appid} is not configured`);
    return app;
  }
}

/** What WeChat bills a unit from this source at (trial and exempt units are free). */
function priceOf(source: NonNullable<ChargeRecord['source']>, app: AppConfig): number {
  return source === 'pack' || source === 'unfunded' ? LIST_PRICE_MILLI[app.product] : 0;
}

function toRecord(r: Database['charges']): Omit<ChargeRecord, 'recorded'> {
  return {
    codeHash: r.code_hash,
    appid: r.appid,
    status: r.status,
    source: r.source,
    packId: r.pack_id,
    priceMilli: r.price_milli,
  };
}

/** The app's packs with units left, bought and assigned alike. */
const drawablePacks = preparedQuery((db, v: { appid: string }) =>
  db
    .selectFrom('packs')
    .select(['id', 'units_all', 'units_used', 'effective_at', 'expires_at', 'refund_requested_at'])
    .where('owner_kind', '=', 'app')
    .where('owner_id', '=', v.appid)
    .where(sql<boolean>`units_used < units_all`),
);
