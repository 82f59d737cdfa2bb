import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * graphql-js quotes the offending value in coercion and validation messages
 * ("got invalid value 1234…", "cannot represent a non string value: 1234…").
 * Here a wrong-typed value is most likely a code or a phone number, and error
 * messages end up in client logs: keep the path and the reason, drop the value.
 */
export function redactValueEcho(message: string): string {
  return message
    .replace(/got invalid value .*? at "/s, 'got an invalid value at "')
    .replace(/got invalid value .*?; /s, 'got an invalid value; ')
    .replace(/(cannot represent [^:]*?): .*$/s, '$1.')
    .replace(/(Expected value of type "[^"]+"), found .*$/s, '$1.')
    .replace(/(Expected type "[^"]+"[^;:]*)[;:] .*$/s, '$1.');
}

function redact<E extends Error>(errors: readonly E[]): (E | GraphQLError)[] {
  return errors.map((e) => {
    const message = redactValueEcho(e.message);
    if (message === e.message || !(e instanceof GraphQLError)) return e;
    return new GraphQLError(message, { nodes: e.nodes, path: e.path, extensions: e.extensions });
  });
}

export function useRedactedInputEchoes(): Plugin {
  return {
    onValidate() {
      return ({ result, setResult }) => {
        if (result.length) setResult(redact(result));
      };
    },
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if ('errors' in result && result.errors?.length) setResult({ ...result, errors: redact(result.errors) });
        },
      };
    },
  };
}
