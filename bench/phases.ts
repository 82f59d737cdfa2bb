// Where an exchange's time goes, from the gateway's own spans (plugins/tracing): a second gateway
// process with tracing on sends them over OTLP/HTTP to a collector here, and each exchange's
// operation span is split into its phases. Tracing costs time of its own, so these figures come
// from a pass of their own, never from the throughput runs.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
}

interface OtlpBody {
  resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

/** Receives OTLP/HTTP JSON trace exports (what @opentelemetry/exporter-trace-otlp-http sends). */
export class SpanCollector {
  readonly spans: OtlpSpan[] = [];
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpBody;
          for (const r of body.resourceSpans ?? []) for (const s of r.scopeSpans ?? []) this.spans.push(...(s.spans ?? []));
        } catch {
          // Not JSON: not an export this bench asked for.
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

const durationMs = (s: OtlpSpan) => Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;

export interface PhaseRow {
  segment: string;
  p50ms: number;
  meanMs: number;
  /** Share of the operation's mean. */
  ofOperation: string;
}

/**
 * Per exchange: the operation span, each phase under it, the WeChat HTTP attempt under its phase,
 * and what is left of the operation outside the phases (GraphQL execution, the resolver, the
 * wait for an admission slot, the service's own glue). `lastN`: the exchanges measured (earlier
 * ones warmed up).
 */
export function phaseBreakdown(spans: readonly OtlpSpan[], lastN: number): PhaseRow[] {
  const children = new Map<string, OtlpSpan[]>();
  for (const s of spans) {
    if (!s.parentSpanId) continue;
    const list = children.get(s.parentSpanId) ?? [];
    list.push(s);
    children.set(s.parentSpanId, list);
  }
  const operations = spans
    .filter((s) => s.name.startsWith('mutation') && (children.get(s.spanId) ?? []).some((c) => c.name === 'wxphone.settle'))
    .sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1))
    .slice(-lastN);
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  for (const op of operations) {
    const total = durationMs(op);
    add('operation (all of it)', total);
    let inPhases = 0;
    for (const phase of children.get(op.spanId) ?? []) {
      const d = durationMs(phase);
      inPhases += d;
      add(phase.name, d);
      for (const call of children.get(phase.spanId) ?? []) if (call.name.startsWith('wechat ')) add(`  ${call.name} (HTTP attempt)`, durationMs(call));
    }
    add('operation outside its phases', total - inPhases);
  }
  const order = [
    'operation (all of it)',
    'wxphone.rate_limit',
    'wxphone.consent_check',
    'wxphone.claim',
    'wxphone.wechat',
    '  wechat getuserphonenumber (HTTP attempt)',
    'wxphone.settle',
    'operation outside its phases',
  ];
  const opMean = mean(samples.get('operation (all of it)') ?? [0]);
  return [...samples.keys()]
    .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))
    .map((segment) => {
      const v = samples.get(segment)!;
      return { segment, p50ms: +median(v).toFixed(3), meanMs: +mean(v).toFixed(3), ofOperation: `${Math.round((100 * mean(v)) / opMean)} %` };
    });
}

export function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function mean(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
}
