import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type QueryCreator } from 'kysely';
import { isPostgres } from '../store/dialect.js';
import type { AppConfig } from '../config.js';
import type { Database, PacksTable } from '../store/schema.js';
import { preparedQuery } from '../store/prepared.js';
import {
  type BillingPack,
  type PackStatus,
  TRIAL_UNITS,
  choosePackToCharge,
  exemption,
  packEffectiveAt,
  packExpiresAt,
  packStatus,
  refundable,
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
  source: 'trial' | 'pack' | 'allocation' | 'exempt' | 'unfunded' | null;
  packId: string | null;
  allocationId: string | null;
  priceMilli: number;
  /** False when the code had been recorded before: nothing was drawn this time. */
  recorded: boolean;
}

/** A pack as one app sees it: its own, or its allocation of a procurement group's pack. */
export interface PackView {
  id: string;
  kind: 'own' | 'allocation';
  appid: string;
  /** For allocations: the group's pack the units come from. */
  packId: string;
  groupId: string | null;
  product: AppConfig['product'];
  unitsAll: number;
  unitsUsed: number;
  paidAt: number;
  effectiveAt: number;
  expiresAt: number;
  validityDays: number;
  pricePaidMilli: number;
  wechatPkgId: string | null;
  refundRequestedAt: number | null;
  status: PackStatus;
}

export interface PackPurchase {
  owner: { kind: 'app'; appid: string } | { kind: 'group'; groupId: string };
  units: number;
  paidAt: number;
  validityDays: number;
  pricePaidMilli: number;
  wechatPkgId?: string | null;
  product?: AppConfig['product'];
}

export type RefundOutcome = { ok: true; pack: PacksTable } | { ok: false; rule: 'ALREADY_REQUESTED' | 'PACK_USED' | 'REFUND_WINDOW_PASSED' };

// A draw that loses a race for a pack's last unit re-reads and tries the next pack; bounded.
const MAX_DRAW_ROUNDS = 8;
// Sanity bounds for recorded purchases: far beyond any real pack, well inside GraphQL Int.
const MAX_PACK_UNITS = 1_000_000_000;
const MAX_VALIDITY_DAYS = 3650;
const EARLIEST_PAYMENT = Date.UTC(2020, 0, 1);

/** An app's drawable packs and allocations as read before a charge's transaction (see BillingLedger.drawableAhead). */
export interface DrawableAhead {
  readonly candidates: readonly DrawCandidate[];
}

type DrawCandidate = BillingPack & { id: string; kind: 'own' | 'allocation'; packId: string };

/**
 * The gateway's mirror of WeChat's charges. Every code the gateway sees gets one
 * charge row (keyed like its claim, so never two), and a confirmed charge draws one
 * unit in WeChat's order: exempt → trial → the in-effect pack or allocation that
 * expires soonest. Draws are conditional updates (`used < all`), so concurrent
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
      const inserted = await insertCharge(trx, { ...fields, source: null, packId: null, allocationId: null, priceMilli: 0 });
      if (Number(inserted.numAffectedRows ?? 0) !== 1) return this.recordedBefore(trx, c.codeHash);
      return { codeHash: c.codeHash, appid: c.appid, status: 'unconfirmed', source: null, packId: null, allocationId: null, priceMilli: 0, recorded: true };
    }
    // Drawn first, so the charge goes in once with its source: one statement fewer while the
    // drawn pack's row is locked, which every charge of the app waits for. On PostgreSQL the
    // draw of a trial or own-pack unit inserts the charge itself (see chargeDrawn).
    const draw = await this.draw(trx, app, c.now, isPostgres(trx) ? fields : undefined, c.drawable);
    const priceMilli = priceOf(draw.source, app);
    const charged =
      draw.charged ?? Number((await insertCharge(trx, { ...fields, source: draw.source, packId: draw.packId, allocationId: draw.allocationId, priceMilli })).numAffectedRows ?? 0) === 1;
    if (!charged) {
      // The code was charged before (an earlier settlement of it): the unit goes back. This
      // transaction holds the row it drew from until it ends, so the count is exactly restored.
      await this.undraw(trx, app.appid, draw);
      return this.recordedBefore(trx, c.codeHash);
    }
    return { codeHash: c.codeHash, appid: c.appid, status: 'confirmed', source: draw.source, packId: draw.packId, allocationId: draw.allocationId, priceMilli, recorded: true };
  }

  private async recordedBefore(trx: Kysely<Database>, codeHash: string): Promise<ChargeRecord> {
    const existing = await trx.selectFrom('charges').selectAll().where('code_hash', '=', codeHash).executeTakeFirstOrThrow();
    return { ...toRecord(existing), recorded: false };
  }

  private async undraw(trx: Kysely<Database>, appid: string, draw: { source: NonNullable<ChargeRecord['source']>; packId: string | null; allocationId: string | null }): Promise<void> {
    if (draw.source === 'trial') {
      await trx.updateTable('app_trials').set({ trial_used: sql`trial_used - 1` }).where('appid', '=', appid).execute();
    } else if (draw.source === 'pack') {
      await trx.updateTable('packs').set({ units_used: sql`units_used - 1` }).where('id', '=', draw.packId!).execute();
    } else if (draw.source === 'allocation') {
      await trx.updateTable('allocations').set({ units_used: sql`units_used - 1` }).where('id', '=', draw.allocationId!).execute();
    }
  }

  /**
   * Draws the unit the consumption rules say this charge takes. With `charge` (PostgreSQL), a trial
   * or own-pack draw also inserts the charge and says whether it did (`charged`); any other draw
   * leaves the insert to the caller.
   */
  private async draw(
    trx: Kysely<Database>,
    app: AppConfig,
    now: number,
    charge?: Omit<ChargeValues, 'source' | 'packId' | 'allocationId' | 'priceMilli'>,
    ahead?: DrawableAhead,
  ): Promise<{ source: NonNullable<ChargeRecord['source']>; packId: string | null; allocationId: string | null; charged?: boolean }> {
    if (exemption({ subjectType: app.subjectType, category: app.category }).exempt) {
      return { source: 'exempt', packId: null, allocationId: null };
    }
    if (!this.trialSpent.has(app.appid)) {
      // One statement draws a trial unit: the first for an app without a counter row, else the
      // next while any is left (a conditional update, so concurrent draws never pass the limit).
      if (charge) {
        const charged = chargedIfDrawn(await drawTrialUnitAndCharge(trx, { ...charge, source: 'trial', packId: null, allocationId: null, priceMilli: priceOf('trial', app) }));
        if (charged !== null) return { source: 'trial', packId: null, allocationId: null, charged };
      } else {
        const trial = await drawTrialUnit(trx, { appid: app.appid, now });
        if (Number(trial.numAffectedRows ?? 0) === 1) return { source: 'trial', packId: null, allocationId: null };
      }
      // The update found the committed count at the limit (it waits for any draw in flight).
      this.trialSpent.add(app.appid);
    }

    for (let round = 0; round < MAX_DRAW_ROUNDS; round++) {
      // The first round may choose from a read made ahead (see drawableAhead); a unit it no longer
      // has is not drawn, and the next round reads again here, as does one that found nothing.
      const readAhead = round === 0 && ahead !== undefined;
      const chosen = choosePackToCharge(readAhead ? ahead.candidates : await this.drawable(trx, app.appid), now);
      if (!chosen && readAhead) continue;
      if (!chosen) break;
      if (chosen.kind === 'own') {
        // The update re-checks what the read saw: a refund or expiry committed meanwhile wins.
        if (charge) {
          const charged = chargedIfDrawn(await drawPackUnitAndCharge(trx, { ...charge, source: 'pack', packId: chosen.id, allocationId: null, priceMilli: priceOf('pack', app) }));
          if (charged !== null) return { source: 'pack', packId: chosen.id, allocationId: null, charged };
        } else {
          const taken = await drawPackUnit(trx, { packId: chosen.id, now });
          if (Number(taken.numAffectedRows) === 1) return { source: 'pack', packId: chosen.id, allocationId: null };
        }
      } else if (await this.lockDrawablePack(trx, chosen.packId, now)) {
        // The group pack's row lock is held to commit: a refund of it waits, then sees this draw.
        const taken = await trx
          .updateTable('allocations')
          .set({ units_used: sql`units_used + 1`, updated_at: now })
          .where('id', '=', chosen.id)
          .where(sql<boolean>`units_used < units_all`)
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) === 1) return { source: 'allocation', packId: chosen.packId, allocationId: chosen.id };
      }
    }
    // WeChat issued the code, so it charged something the mirror has no units for: the
    // mirror is behind (a pack not recorded here). Reconciliation and quota show it.
    return { source: 'unfunded', packId: null, allocationId: null };
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

  /** The app's own packs and allocations, shaped for the consumption-order rules. */
  private async drawable(db: Kysely<Database>, appid: string): Promise<DrawCandidate[]> {
    const { rows } = await drawablePacks(db, { appid });
    return rows.map((r) => ({ ...billingPack(r.id, r), id: r.id, kind: r.kind, packId: r.pack_id }));
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

  async recordPackPurchase(input: PackPurchase, now: number): Promise<PacksTable> {
    if (!Number.isSafeInteger(input.units) || input.units <= 0 || input.units > MAX_PACK_UNITS) {
      throw new LedgerInputError(`units must be a whole number from 1 to ${MAX_PACK_UNITS}`);
    }
    if (!Number.isSafeInteger(input.validityDays) || input.validityDays <= 0 || input.validityDays > MAX_VALIDITY_DAYS) {
      throw new LedgerInputError(`validityDays must be a whole number from 1 to ${MAX_VALIDITY_DAYS}`);
    }
    if (input.paidAt < EARLIEST_PAYMENT || input.paidAt > now + DAY_MS) throw new LedgerInputError('paidAt must be between 2020-01-01 and tomorrow');
    if (!Number.isSafeInteger(input.pricePaidMilli) || input.pricePaidMilli < 0) throw new LedgerInputError('pricePaidMilli must be a non-negative integer');
    let product: AppConfig['product'];
    if (input.owner.kind === 'app') {
      product = this.app(input.owner.appid).product;
    } else {
      await this.group(input.owner.groupId);
      product = input.product ?? 'quick';
    }
    if (input.product && input.product !== product) throw new LedgerInputError(`the app uses the ${product} product`);
    const effectiveAt = packEffectiveAt(input.paidAt, this.opts.chargingStartDate);
    const row: PacksTable = {
      id: `pk_${randomUUID()}`,
      owner_kind: input.owner.kind,
      owner_id: input.owner.kind === 'app' ? input.owner.appid : input.owner.groupId,
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
      created_at: now,
    };
    await this.db.insertInto('packs').values(row).execute();
    return row;
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
      if (pack.refund_state) return { ok: false, rule: 'ALREADY_REQUESTED' } as const;
      const used = pack.owner_kind === 'app' ? pack.units_used : await this.allocatedUsed(trx, pack.id);
      if (used > 0) return { ok: false, rule: 'PACK_USED' } as const;
      if (!refundable({ paidAt: pack.paid_at, used }, now)) return { ok: false, rule: 'REFUND_WINDOW_PASSED' } as const;
      // Conditional on no unit drawn meanwhile: a draw and a refund must not both win.
      const r = await trx
        .updateTable('packs')
        .set({ refund_state: 'requested', refund_requested_at: now })
        .where('id', '=', packId)
        .where('refund_state', 'is', null)
        .where('units_used', '=', 0)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return { ok: false, rule: 'PACK_USED' } as const;
      return { ok: true, pack: { ...pack, refund_state: 'requested', refund_requested_at: now } } as const;
    });
  }

  async createGroup(name: string, members: readonly string[], now: number) {
    if (!name.trim()) throw new LedgerInputError('a procurement group needs a name');
    for (const appid of members) this.app(appid);
    const id = `pg_${randomUUID()}`;
    await this.db.transaction().execute(async (trx) => {
      const clash = await trx.selectFrom('procurement_groups').select('id').where('name', '=', name).executeTakeFirst();
      if (clash) throw new LedgerInputError(`a procurement group named "${name}" exists`);
      await trx.insertInto('procurement_groups').values({ id, name, created_at: now }).execute();
      for (const appid of new Set(members)) await trx.insertInto('procurement_members').values({ group_id: id, appid }).execute();
    });
    return { id, name, createdAt: now, members: [...new Set(members)] };
  }

  /** Gives `units` of a group's pack to a member app (adds to its allocation of that pack). */
  async allocate(packId: string, appid: string, units: number, now: number) {
    if (!Number.isSafeInteger(units) || units <= 0) throw new LedgerInputError('units must be a positive integer');
    this.app(appid);
    return this.db.transaction().execute(async (trx) => {
      const pack = await trx.selectFrom('packs').selectAll().where('id', '=', packId).executeTakeFirst();
      if (!pack || pack.owner_kind !== 'group') throw new LedgerInputError('allocations come from a pack owned by a procurement group');
      if (pack.refund_state) throw new LedgerInputError('the pack is being refunded');
      const product = this.app(appid).product;
      if (pack.product !== product) throw new LedgerInputError(`the pack is for the ${pack.product} product; app ${appid} uses ${product}`);
      const member = await trx.selectFrom('procurement_members').select('appid').where('group_id', '=', pack.owner_id).where('appid', '=', appid).executeTakeFirst();
      if (!member) throw new LedgerInputError(`app ${appid} is not a member of the pack's group`);
      await this.lockPack(trx, packId);
      const allocated = await this.allocatedUnits(trx, packId);
      if (allocated + units > pack.units_all) {
        throw new LedgerInputError(`only ${pack.units_all - allocated} units of the pack are unallocated`);
      }
      const existing = await trx.selectFrom('allocations').selectAll().where('pack_id', '=', packId).where('appid', '=', appid).executeTakeFirst();
      if (existing) {
        await trx.updateTable('allocations').set({ units_all: sql`units_all + ${units}`, updated_at: now }).where('id', '=', existing.id).execute();
        return { ...existing, units_all: existing.units_all + units, updated_at: now };
      }
      const row = { id: `al_${randomUUID()}`, pack_id: packId, appid, units_all: units, units_used: 0, created_at: now, updated_at: now };
      await trx.insertInto('allocations').values(row).execute();
      return row;
    });
  }

  /** Moves unused units of one allocation to another member app of the same group. */
  async moveUnits(allocationId: string, toAppid: string, units: number, now: number) {
    if (!Number.isSafeInteger(units) || units <= 0) throw new LedgerInputError('units must be a positive integer');
    this.app(toAppid);
    return this.db.transaction().execute(async (trx) => {
      const located = await trx.selectFrom('allocations').select('pack_id').where('id', '=', allocationId).executeTakeFirst();
      if (!located) throw new LedgerInputError('no such allocation');
      // Moves within one pack take its lock first, so two opposite moves cannot deadlock.
      await this.lockPack(trx, located.pack_id);
      const from = await trx.selectFrom('allocations').selectAll().where('id', '=', allocationId).executeTakeFirstOrThrow();
      if (from.appid === toAppid) throw new LedgerInputError('the allocation already belongs to that app');
      const pack = await trx.selectFrom('packs').select(['owner_id']).where('id', '=', from.pack_id).executeTakeFirstOrThrow();
      const member = await trx.selectFrom('procurement_members').select('appid').where('group_id', '=', pack.owner_id).where('appid', '=', toAppid).executeTakeFirst();
      if (!member) throw new LedgerInputError(`app ${toAppid} is not a member of the pack's group`);
      // Never below what was used: conditional, so a concurrent draw cannot be taken back.
      const shrunk = await trx
        .updateTable('allocations')
        .set({ units_all: sql`units_all - ${units}`, updated_at: now })
        .where('id', '=', allocationId)
        .where(sql<boolean>`units_all - ${units} >= units_used`)
        .executeTakeFirst();
      if (Number(shrunk.numUpdatedRows) !== 1) throw new LedgerInputError(`the allocation has fewer than ${units} unused units`);
      const target = await trx.selectFrom('allocations').selectAll().where('pack_id', '=', from.pack_id).where('appid', '=', toAppid).executeTakeFirst();
      if (target) {
        await trx.updateTable('allocations').set({ units_all: sql`units_all + ${units}`, updated_at: now }).where('id', '=', target.id).execute();
      } else {
        await trx
          .insertInto('allocations')
          .values({ id: `al_${randomUUID()}`, pack_id: from.pack_id, appid: toAppid, units_all: units, units_used: 0, created_at: now, updated_at: now })
          .execute();
      }
      const after = await trx.selectFrom('allocations').selectAll().where('pack_id', '=', from.pack_id).where('appid', 'in', [from.appid, toAppid]).execute();
      return { from: after.find((a) => a.appid === from.appid)!, to: after.find((a) => a.appid === toAppid)! };
    });
  }

  /** The app's packs (own and allocated) with their status now. */
  async packsFor(appid: string, now: number): Promise<PackView[]> {
    this.app(appid);
    const own = await this.db.selectFrom('packs').selectAll().where('owner_kind', '=', 'app').where('owner_id', '=', appid).execute();
    const allocated = await this.db
      .selectFrom('allocations as a')
      .innerJoin('packs as p', 'p.id', 'a.pack_id')
      .selectAll('p')
      .select(['a.id as allocation_id', 'a.units_all as alloc_all', 'a.units_used as alloc_used'])
      .where('a.appid', '=', appid)
      .execute();
    const views: PackView[] = [
      ...own.map((p) => packView(p, { id: p.id, kind: 'own', appid, unitsAll: p.units_all, unitsUsed: p.units_used, groupId: null }, now)),
      ...allocated.map((p) =>
        packView(p, { id: p.allocation_id, kind: 'allocation', appid, unitsAll: p.alloc_all, unitsUsed: p.alloc_used, groupId: p.owner_id }, now),
      ),
    ];
    return views.sort((a, b) => a.expiresAt - b.expiresAt || a.effectiveAt - b.effectiveAt || a.id.localeCompare(b.id));
  }

  async groups() {
    const groups = await this.db.selectFrom('procurement_groups').selectAll().orderBy('name').execute();
    const members = await this.db.selectFrom('procurement_members').selectAll().execute();
    const packs = await this.db.selectFrom('packs').selectAll().where('owner_kind', '=', 'group').execute();
    const allocations = await this.db.selectFrom('allocations').selectAll().execute();
    return groups.map((g) => ({
      id: g.id,
      name: g.name,
      createdAt: g.created_at,
      members: members.filter((m) => m.group_id === g.id).map((m) => m.appid).sort(),
      packs: packs
        .filter((p) => p.owner_id === g.id)
        .map((p) => {
          const own = allocations.filter((a) => a.pack_id === p.id);
          return {
            pack: p,
            allocated: own.reduce((n, a) => n + a.units_all, 0),
            used: own.reduce((n, a) => n + a.units_used, 0),
            allocations: own,
          };
        }),
    }));
  }

  private async group(groupId: string) {
    const g = await this.db.selectFrom('procurement_groups').select('id').where('id', '=', groupId).executeTakeFirst();
    if (!g) throw new LedgerInputError('no such procurement group');
    return g;
  }

  private async allocatedUnits(trx: Kysely<Database>, packId: string): Promise<number> {
    const r = await trx.selectFrom('allocations').select((eb) => eb.fn.sum<number>('units_all').as('n')).where('pack_id', '=', packId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  private async allocatedUsed(trx: Kysely<Database>, packId: string): Promise<number> {
    const r = await trx.selectFrom('allocations').select((eb) => eb.fn.sum<number>('units_used').as('n')).where('pack_id', '=', packId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /**
   * Takes the pack's row lock until the transaction ends (a no-op update: portable, where
   * SELECT … FOR UPDATE is not; SQLite transactions are serial anyway).
   */
  private async lockPack(trx: Kysely<Database>, packId: string): Promise<void> {
    await trx.updateTable('packs').set({ units_used: sql`units_used` }).where('id', '=', packId).execute();
  }

  /** Locks a group pack and says whether it can still be drawn from (not refunded, in effect). */
  private async lockDrawablePack(trx: Kysely<Database>, packId: string, now: number): Promise<boolean> {
    const r = await trx
      .updateTable('packs')
      .set({ units_used: sql`units_used` })
      .where('id', '=', packId)
      .where('refund_requested_at', 'is', null)
      .where('effective_at', '<=', now)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  private app(appid: string): AppConfig {
    const app = this.apps.get(appid);
    if (!app) throw new LedgerInputError(`app ${appid} is not configured`);
    return app;
  }
}

// A pack with a refund requested is out of use at once (its money is on the way back).
function billingPack(
  id: string,
  r: { units_all: number; units_used: number; effective_at: number; expires_at: number; refund_requested_at: number | null },
): BillingPack {
  return {
    id,
    all: r.units_all,
    used: r.units_used,
    effectiveAt: r.effective_at,
    expiresAt: r.expires_at,
    ...(r.refund_requested_at !== null ? { refundedAt: r.refund_requested_at } : {}),
  };
}

function packView(
  p: PacksTable,
  as: { id: string; kind: 'own' | 'allocation'; appid: string; unitsAll: number; unitsUsed: number; groupId: string | null },
  now: number,
): PackView {
  return {
    id: as.id,
    kind: as.kind,
    appid: as.appid,
    packId: p.id,
    groupId: as.groupId,
    product: p.product,
    unitsAll: as.unitsAll,
    unitsUsed: as.unitsUsed,
    paidAt: p.paid_at,
    effectiveAt: p.effective_at,
    expiresAt: p.expires_at,
    validityDays: p.validity_days,
    pricePaidMilli: p.price_paid_milli,
    wechatPkgId: p.wechat_pkg_id,
    refundRequestedAt: p.refund_requested_at,
    status: packStatus(billingPack(p.id, { ...p, units_all: as.unitsAll, units_used: as.unitsUsed }), now),
  };
}

/** What WeChat bills a unit from this source at (trial and exempt units are free). */
function priceOf(source: NonNullable<ChargeRecord['source']>, app: AppConfig): number {
  return source === 'pack' || source === 'allocation' || source === 'unfunded' ? LIST_PRICE_MILLI[app.product] : 0;
}

function toRecord(r: Database['charges']): Omit<ChargeRecord, 'recorded'> {
  return {
    codeHash: r.code_hash,
    appid: r.appid,
    status: r.status,
    source: r.source,
    packId: r.pack_id,
    allocationId: r.allocation_id,
    priceMilli: r.price_milli,
  };
}

// The statements of a charge, prepared once (see preparedQuery): every exchange makes two or three of them.
type ChargeRow = Database['charges'];

const insertCharge = preparedQuery(
  (
    db,
    v: {
      codeHash: string;
      appid: string;
      product: ChargeRow['product'];
      status: ChargeRow['status'];
      source: ChargeRow['source'];
      packId: string | null;
      allocationId: string | null;
      priceMilli: number;
      tappedAt: number | null;
      now: number;
    },
  ) =>
    db
      .insertInto('charges')
      .values({
        code_hash: v.codeHash,
        appid: v.appid,
        product: v.product,
        status: v.status,
        source: v.source,
        pack_id: v.packId,
        allocation_id: v.allocationId,
        price_milli: v.priceMilli,
        tapped_at: v.tappedAt,
        created_at: v.now,
      })
      .onConflict((oc) => oc.column('code_hash').doNothing()),
);

type ChargeValues = Parameters<typeof insertCharge>[1];

/** A trial unit: the first for an app without a counter row, else the next while any is left. */
const trialDraw = (d: QueryCreator<Database>, v: { appid: string; now: number }) =>
  d
    .insertInto('app_trials')
    .values({ appid: v.appid, trial_used: 1, updated_at: v.now })
    .onConflict((oc) =>
      oc
        .column('appid')
        .doUpdateSet({ trial_used: sql`app_trials.trial_used + 1`, updated_at: v.now })
        .where('app_trials.trial_used', '<', TRIAL_UNITS),
    );

/** A unit of an own pack, re-checking what the read of drawable packs saw. */
const packDraw = (d: QueryCreator<Database>, v: { packId: string; now: number }) =>
  d
    .updateTable('packs')
    .set({ units_used: sql`units_used + 1` })
    .where('id', '=', v.packId)
    .where(sql<boolean>`units_used < units_all`)
    .where('refund_requested_at', 'is', null)
    .where('effective_at', '<=', v.now)
    .where('expires_at', '>', v.now);

const drawTrialUnit = preparedQuery(trialDraw);
const drawPackUnit = preparedQuery(packDraw);

// On PostgreSQL a unit is drawn and its charge inserted by one statement, a data-modifying CTE:
// one round trip fewer per exchange, and one fewer while the app's pack (or trial) row is locked,
// which every other charge of the app waits for. It says what it did: drawn 0 (the unit was gone;
// nothing was inserted), or drawn 1 and charged 0 or 1 (0: the code was charged before).
// SQLite has no such CTE, and there a statement is no round trip: it runs the two statements.
function chargeDrawn(qc: QueryCreator<Database & { drawn: { id: string } }>, v: ChargeValues) {
  return qc
    .with('charged', (d) =>
      d
        .insertInto('charges')
        .columns(['code_hash', 'appid', 'product', 'status', 'source', 'pack_id', 'allocation_id', 'price_milli', 'tapped_at', 'created_at'])
        .expression(
          d.selectFrom('drawn').select([
            sql<string>`${v.codeHash}`.as('code_hash'),
            sql<string>`${v.appid}`.as('appid'),
            sql<string>`${v.product}`.as('product'),
            sql<string>`${v.status}`.as('status'),
            sql<string>`${v.source}`.as('source'),
            sql<string>`${v.packId}`.as('pack_id'),
            sql<string>`${v.allocationId}`.as('allocation_id'),
            // A parameter in a select list is text to PostgreSQL unless cast.
            sql<number>`cast(${v.priceMilli} as integer)`.as('price_milli'),
            sql<number>`cast(${v.tappedAt} as bigint)`.as('tapped_at'),
            sql<number>`cast(${v.now} as bigint)`.as('created_at'),
          ]),
        )
        .onConflict((oc) => oc.column('code_hash').doNothing())
        .returning('code_hash'),
    )
    .selectNoFrom((eb) => [
      eb.selectFrom('drawn').select(eb.fn.countAll<string>().as('n')).as('drawn'),
      eb.selectFrom('charged').select(eb.fn.countAll<string>().as('n')).as('charged'),
    ]);
}

/** What a chargeDrawn statement did: null when no unit was drawn, else whether the charge went in. */
function chargedIfDrawn({ rows }: { rows: { drawn: string | null; charged: string | null }[] }): boolean | null {
  return Number(rows[0]!.drawn) === 1 ? Number(rows[0]!.charged) === 1 : null;
}

const drawTrialUnitAndCharge = preparedQuery((db, v: ChargeValues) => chargeDrawn(db.with('drawn', (d) => trialDraw(d, v).returning('appid as id')), v));
const drawPackUnitAndCharge = preparedQuery((db, v: ChargeValues & { packId: string }) => chargeDrawn(db.with('drawn', (d) => packDraw(d, v).returning('id')), v));

/** The app's own packs and its allocations of group packs, in one round trip. */
const drawablePacks = preparedQuery((db, v: { appid: string }) =>
  db
    .selectFrom('packs')
    .select(['id', 'id as pack_id', 'units_all', 'units_used', 'effective_at', 'expires_at', 'refund_requested_at', sql<'own' | 'allocation'>`'own'`.as('kind')])
    .where('owner_kind', '=', 'app')
    .where('owner_id', '=', v.appid)
    .where(sql<boolean>`units_used < units_all`)
    .unionAll(
      db
        .selectFrom('allocations as a')
        .innerJoin('packs as p', 'p.id', 'a.pack_id')
        .select(['a.id', 'a.pack_id', 'a.units_all', 'a.units_used', 'p.effective_at', 'p.expires_at', 'p.refund_requested_at', sql<'own' | 'allocation'>`'allocation'`.as('kind')])
        .where('a.appid', '=', v.appid)
        .where(sql<boolean>`a.units_used < a.units_all`),
    ),
);
