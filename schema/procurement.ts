import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { PackRecordRef } from './packs.js';
import { LedgerInputError } from '../src/billing/ledger.js';
import type { AllocationsTable, PacksTable } from '../src/store/schema.js';

type Group = Awaited<ReturnType<import('../src/billing/ledger.js').BillingLedger['groups']>>[number];

const AllocationRef = builder.objectRef<AllocationsTable>('Allocation').implement({
  description: "A member app's share of a group's pack, drawn like the app's own packs.",
  fields: (t) => ({
    id: t.exposeID('id'),
    packId: t.string({ resolve: (a) => a.pack_id }),
    appid: t.exposeString('appid'),
    unitsAll: t.int({ resolve: (a) => a.units_all }),
    unitsUsed: t.int({ resolve: (a) => a.units_used }),
  }),
});

const GroupPackRef = builder.objectRef<{ pack: PacksTable; allocated: number; used: number; allocations: AllocationsTable[] }>('GroupPack').implement({
  fields: (t) => ({
    pack: t.field({ type: PackRecordRef, resolve: (g) => g.pack }),
    allocated: t.exposeInt('allocated'),
    unallocated: t.int({ resolve: (g) => g.pack.units_all - g.allocated }),
    used: t.exposeInt('used'),
    allocations: t.field({ type: [AllocationRef], resolve: (g) => g.allocations }),
  }),
});

const GroupRef = builder.objectRef<Group>('ProcurementGroup').implement({
  description: 'Bulk procurement (集采): packs bought by one organisation and allocated to member apps.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    createdAt: t.field({ type: DateTime, resolve: (g) => g.createdAt }),
    members: t.stringList({ resolve: (g) => g.members }),
    packs: t.field({ type: [GroupPackRef], resolve: (g) => g.packs }),
  }),
});

builder.queryField('procurementGroups', (t) =>
  t.field({ type: [GroupRef], authScopes: { scope: 'quota:read' }, resolve: (_r, _a, ctx) => ctx.services.billing.ledger.groups() }),
);

const errors = (name: string) => ({ types: [LedgerInputError], union: { name } });

async function groupById(ctx: { services: { billing: { ledger: { groups(): Promise<Group[]> } } } }, id: string): Promise<Group> {
  const g = (await ctx.services.billing.ledger.groups()).find((x) => x.id === id);
  if (!g) throw new LedgerInputError('no such procurement group');
  return g;
}

builder.mutationFields((t) => ({
  createProcurementGroup: t.field({
    type: GroupRef,
    authScopes: { scope: 'billing:admin' },
    args: { name: t.arg.string(), members: t.arg.stringList() },
    errors: errors('CreateProcurementGroupResult'),
    resolve: async (_r, { name, members }, ctx) => {
      const g = await ctx.services.billing.ledger.createGroup(name, members, ctx.services.now());
      return groupById(ctx, g.id);
    },
  }),
  allocateUnits: t.field({
    type: AllocationRef,
    description: "Gives units of a group's pack to a member app.",
    authScopes: { scope: 'billing:admin' },
    args: { packId: t.arg.id(), appid: t.arg.string(), units: t.arg.int() },
    errors: errors('AllocateUnitsResult'),
    resolve: (_r, a, ctx) => ctx.services.billing.ledger.allocate(String(a.packId), a.appid, a.units, ctx.services.now()),
  }),
  moveUnits: t.field({
    type: builder.objectRef<{ from: AllocationsTable; to: AllocationsTable }>('UnitsMoved').implement({
      fields: (f) => ({ from: f.field({ type: AllocationRef, resolve: (m) => m.from }), to: f.field({ type: AllocationRef, resolve: (m) => m.to }) }),
    }),
    description: 'Moves unused allocated units to another member app (never below what was used).',
    authScopes: { scope: 'billing:admin' },
    args: { allocationId: t.arg.id(), toAppid: t.arg.string(), units: t.arg.int() },
    errors: errors('MoveUnitsResult'),
    resolve: (_r, a, ctx) => ctx.services.billing.ledger.moveUnits(String(a.allocationId), a.toAppid, a.units, ctx.services.now()),
  }),
}));
