import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { createGraphQLError } from 'graphql-yoga';
import type { GraphQLContext } from './context.js';

/** Scopes a session token may carry (`scope` claim). */
export type Scope = 'phone:exchange' | 'quota:read' | 'billing:admin' | 'audit:read' | 'audit:admin';

// Defines no types: one file per domain adds them (Pothos app-layout guide).
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: { scope: Scope };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
  Scalars: { DateTime: { Input: number; Output: number } };
}>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  scopeAuth: {
    authScopes: async (context) => ({
      scope: (scope: Scope) => context.session.scopes.has(scope),
    }),
    unauthorizedError: (_parent, _context, info) =>
      createGraphQLError(`the session token lacks the scope that ${info.parentType.name}.${info.fieldName} needs`, {
        extensions: { code: 'FORBIDDEN' },
      }),
  },
  errors: { directResult: true },
});

builder.queryType({});
builder.mutationType({});
