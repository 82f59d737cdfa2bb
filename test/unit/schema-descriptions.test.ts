import { describe, expect, it } from 'vitest';
import { isEnumType, isInputObjectType, isInterfaceType, isObjectType, isScalarType, isSpecifiedScalarType, isUnionType, isIntrospectionType } from 'graphql';
import { buildSchema } from '../../schema/index.js';

/** Every type, field, argument, input field and enum value the API defines, by its coordinate, when it has no description. */
function undescribed(): string[] {
  const missing: string[] = [];
  const schema = buildSchema();
  for (const type of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(type) || (isScalarType(type) && isSpecifiedScalarType(type))) continue;
    const isRoot = type === schema.getQueryType() || type === schema.getMutationType();
    if (!type.description && !isRoot) missing.push(type.name);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!field.description) missing.push(`${type.name}.${field.name}`);
        for (const arg of field.args) if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name}:)`);
      }
    }
    if (isInputObjectType(type)) for (const field of Object.values(type.getFields())) if (!field.description) missing.push(`${type.name}.${field.name}`);
    if (isEnumType(type)) for (const value of type.getValues()) if (!value.description) missing.push(`${type.name}.${value.name}`);
    if (isUnionType(type) && !type.description) missing.push(type.name);
  }
  return [...new Set(missing)].sort();
}

describe('the schema explains itself', () => {
  it('every type, field, argument, input field and enum value has a description', () => {
    expect(undescribed()).toEqual([]);
  });

  it('DateTime says which specification it follows, so codegen can map it', () => {
    expect(buildSchema().getType('DateTime')).toMatchObject({ specifiedByURL: expect.stringMatching(/^https:\/\//) });
  });
});
