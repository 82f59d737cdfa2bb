import { packStatus } from '../billing/rules.js';
import { SimInputError } from './errors.js';
import { MAX_FAULT_DELAY_MS, type FaultSpec } from './faults.js';
import type { PackInput, SimAppInput, SimulatorState } from './state.js';
import type { PushTargetInput } from './message-push.js';
import { WECHAT_PATHS } from './wechat-routes.js';

/**
 * The simulator's own API under /__sim__:
 * what a test or the sandbox uses to play the mini program and the WeChat
 * console. Handlers take the parsed JSON body (or query) and return the JSON
 * answer; SimInputError becomes HTTP 400.
 */

type Body = Record<string, unknown>;
type ControlHandler = (state: SimulatorState, body: Body, query: URLSearchParams) => unknown;

export const CONTROL_PREFIX = '/__sim__/';

const routes: Record<string, Partial<Record<'GET' | 'POST', ControlHandler>>> = {
  '/__sim__/apps': {
    GET: (state) => state.listApps(),
    POST: (state, body) => {
      const { secret: _secret, ...app } = state.registerApp(body as unknown as SimAppInput);
      return app;
    },
  },

  '/__sim__/phone-codes': {
    POST: (state, body) =>
      state.mintPhoneCode(
        body.appid as string,
        body.phoneNumber as string,
        body.countryCode as string | number | undefined,
        body.openid as string | undefined,
      ),
  },

  '/__sim__/login-codes': {
    POST: (state, body) => {
      const phone =
        body.phoneNumber === undefined
          ? undefined
          : { phoneNumber: body.phoneNumber as string, countryCode: body.countryCode as string | number | undefined };
      return state.mintLoginCode(body.appid as string, body.openid as string, phone);
    },
  },

  '/__sim__/encrypted-phone': {
    POST: (state, body) =>
      state.encryptedPhone(
        body.appid as string,
        body.openid as string,
        body.phoneNumber as string,
        body.countryCode as string | number | undefined,
      ),
  },

  '/__sim__/packs': {
    POST: (state, body) => state.addPack(body.appid as string, body as unknown as PackInput),
  },

  '/__sim__/faults': {
    POST: (state, body) => {
      const { path, fault, times } = parseFault(body);
      return { path, pending: state.faults.add(path, fault, times) };
    },
  },

  '/__sim__/clock': {
    GET: (state) => ({ now: state.now() }),
    POST: (state, body) => {
      if (typeof body.advanceSeconds !== 'number') throw new SimInputError('advanceSeconds must be a number');
      return { now: state.advance(body.advanceSeconds) };
    },
  },

  // The app's message-push settings in the console: where its charge alerts go, and how.
  '/__sim__/message-push': {
    GET: (state, _body, query) => {
      const appid = query.get('appid') ?? '';
      if (!state.appDetails(appid)) throw new SimInputError(`unknown appid ${JSON.stringify(appid)}`);
      return { appid, ...state.messagePush.describe(appid) };
    },
    POST: (state, body) => {
      if (body.url === null) return state.setMessagePush(body.appid as string, null);
      return state.setMessagePush(body.appid as string, body as unknown as PushTargetInput);
    },
  },

  '/__sim__/stats': {
    GET: (state) => state.stats(),
  },

  '/__sim__/reset': {
    POST: (state) => {
      state.reset();
      return { ok: true };
    },
  },

  // An app's account as the simulator holds it: lets tests check the gateway's mirror.
  '/__sim__/ledger': {
    GET: (state, _body, query) => {
      const appid = query.get('appid') ?? '';
      const app = state.appDetails(appid);
      if (!app) throw new SimInputError(`unknown appid ${JSON.stringify(appid)}`);
      const ledger = state.ledger(appid);
      const now = state.now();
      return {
        appid,
        exempt: app.exempt,
        exemptionRule: app.exemptionRule,
        trialUsed: ledger.trialUsed,
        packs: ledger.packs.map((p) => ({
          pkgId: p.id,
          all: p.all,
          used: p.used,
          startTime: Math.floor(p.effectiveAt / 1000),
          endTime: Math.floor(p.expiresAt / 1000),
          status: packStatus(p, now),
        })),
      };
    },
  },
};

export type ControlLookup = { handler: ControlHandler } | { notAllowed: true } | undefined;

export function controlHandler(method: string, path: string): ControlLookup {
  const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (!route) return undefined;
  const handler = method === 'GET' || method === 'POST' ? route[method] : undefined;
  return handler ? { handler } : { notAllowed: true };
}

function parseFault(body: Body): { path: string; fault: FaultSpec; times: number } {
  if (typeof body.path !== 'string') throw new SimInputError('path is required');
  const path = body.path.split('?')[0]!;
  if (!WECHAT_PATHS.includes(path)) {
    throw new SimInputError(`path must be one of the WeChat paths: ${WECHAT_PATHS.join(', ')}`);
  }
  const times = body.times === undefined ? 1 : body.times;
  if (typeof times !== 'number' || !Number.isSafeInteger(times) || times < 0) {
    throw new SimInputError('times must be an integer >= 0 (0 clears the faults of the path)');
  }
  const fault: FaultSpec = {};
  if (body.errcode !== undefined) {
    if (typeof body.errcode !== 'number' || !Number.isSafeInteger(body.errcode)) throw new SimInputError('errcode must be an integer');
    fault.errcode = body.errcode;
  }
  if (body.httpStatus !== undefined) {
    const s = body.httpStatus;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 200 || s > 599) throw new SimInputError('httpStatus must be an integer from 200 to 599');
    fault.httpStatus = s;
  }
  if (body.delayMs !== undefined) {
    const d = body.delayMs;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_FAULT_DELAY_MS) {
      throw new SimInputError(`delayMs must be an integer from 0 to ${MAX_FAULT_DELAY_MS}`);
    }
    fault.delayMs = d;
  }
  if (body.reset !== undefined) {
    if (typeof body.reset !== 'boolean') throw new SimInputError('reset must be a boolean');
    if (body.reset) fault.reset = true;
  }
  const outcomes = [fault.errcode !== undefined, fault.httpStatus !== undefined, fault.reset === true].filter(Boolean).length;
  if (outcomes > 1) throw new SimInputError('choose one of errcode, httpStatus and reset');
  if (outcomes === 0 && fault.delayMs === undefined && times > 0) {
    throw new SimInputError('a fault needs errcode, httpStatus, delayMs or reset');
  }
  return { path, fault, times };
}
