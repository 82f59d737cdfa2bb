import type { GraphQLResolveInfo } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';
import { builder, type Scope } from './builder.js';
import type { GraphQLContext } from './context.js';

/**
 * Global object identification: every entity a client may cache has an `id` that names its type
 * and its key, and `node(id:)` reads it back. Apollo and urql normalise by `__typename` + `id`, so a
 * mutation that answers with an entity updates every cached query that holds it.
 *
 * An id is base64url("Type:key1:key2"), each key part URI-encoded: opaque to clients (they must not
 * parse it), stable across releases and instances, and enough to load the entity without a lookup
 * table. Each entity type registers how to read its key and how to load it, with the scope reading
 * it needs: `node` answers only what the token could read through the type's own query.
 */
interface NodeType<T> {
  /** How many parts the key has: an id with another count names nothing. */
  keyParts: number;
  key: (value: T) => string[];
  load: (key: string[], ctx: GraphQLContext) => Promise<T | null>;
  scope: Scope;
}

const types = new Map<string, NodeType<any>>();
const typeOf = new WeakMap<object, string>();

export function globalId(type: string, key: readonly string[]): string {
  return Buffer.from([type, ...key.map(encodeURIComponent)].join(':')).toString('base64url');
}

/** The type and key an id names; null when it is not one of this API's ids. */
export function parseGlobalId(id: string): { type: string; key: string[] } | null {
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(id)) return null;
  const [type, ...parts] = Buffer.from(id, 'base64url').toString().split(':');
  const node = type ? types.get(type) : undefined;
  if (!node || parts.length === 0) return null;
  try {
    return { type: type!, key: parts.map(decodeURIComponent) };
  } catch {
    return null;
  }
}

/** The key of an id of `type`, or null when the id names something else. */
export function keyOfGlobalId(id: string, type: string): string[] | null {
  const parsed = parseGlobalId(id);
  return parsed && parsed.type === type ? parsed.key : null;
}

export const NodeInterface = builder.interfaceRef<object>('Node').implement({
  description: 'An object with a global id: the same entity always has the same id, on every instance and in every answer. Read it again with `node(id:)`.',
  resolveType: (value) => typeOf.get(value) ?? null,
  fields: (t) => ({
    id: t.id({
      description: 'Opaque global id: compare and store it, never parse it.',
      resolve: (value: object, _args: unknown, _ctx: GraphQLContext, info: GraphQLResolveInfo) => {
        const node = types.get(info.parentType.name);
        if (!node) throw new Error(`${info.parentType.name} is not a registered Node type`);
        return globalId(info.parentType.name, node.key(value));
      },
    }),
  }),
});

/** Registers an entity type for `node(id:)` and its `id` field; call beside the type's definition. */
export function registerNode<T>(type: string, node: NodeType<T>): void {
  types.set(type, node);
}

async function loadNode(id: string, ctx: GraphQLContext): Promise<object | null> {
  const parsed = parseGlobalId(id);
  if (!parsed) return null;
  const node = types.get(parsed.type)!;
  if (parsed.key.length !== node.keyParts) return null;
  if (!ctx.session.scopes.has(node.scope)) {
    throw createGraphQLError(`the session token lacks the scope that ${parsed.type} needs (${node.scope})`, {
      extensions: { code: 'FORBIDDEN' },
    });
  }
  const value = await node.load(parsed.key, ctx);
  if (value === null) return null;
  typeOf.set(value as object, parsed.type);
  return value as object;
}

builder.queryFields((t) => ({
  node: t.field({
    type: NodeInterface,
    nullable: true,
    description: 'The entity an id names; null when it does not exist (or no longer does). FORBIDDEN when the token may not read that type.',
    args: { id: t.arg.id({ description: 'A global id, as an `id` field gave it.' }) },
    resolve: (_r, { id }, ctx) => loadNode(String(id), ctx),
  }),
  nodes: t.field({
    type: [NodeInterface],
    nullable: { list: true, items: true },
    description: 'The entities the ids name, in the same order (at most 100); null for each one that does not exist.',
    args: { ids: t.arg.idList({ description: 'Global ids, as `id` fields gave them.' }) },
    resolve: (_r, { ids }, ctx) => {
      if (ids.length > 100) throw createGraphQLError('at most 100 ids', { extensions: { code: 'BAD_USER_INPUT' } });
      // An error in the list is that item's error (null + an entry in errors), not the whole list's.
      return Promise.all(ids.map((id) => loadNode(String(id), ctx).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))));
    },
  }),
}));
