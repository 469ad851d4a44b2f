/**
 * The README's example event as the in-process benchmarks publish it: one payload shape and its zod
 * schema, shared so that the pipeline bench and the observability instruction counts measure the
 * same work.
 */
import { z } from 'zod';

/** ~300 bytes of JSON once stringified, different per event. */
export function orderPayload(i: number): {
  orderId: string;
  customer: string;
  lines: { sku: string; qty: number }[];
  note: string;
} {
  return {
    orderId: `order-${i}`,
    customer: `customer-${i % 977}`,
    lines: [
      { sku: 'SKU-000123', qty: 1 + (i % 3) },
      { sku: 'SKU-004567', qty: 2 },
      { sku: 'SKU-089012', qty: 1 },
    ],
    note: 'Leave at the door; ring twice. '.repeat(5),
  };
}

export const orderSchema = z.object({
  orderId: z.string(),
  customer: z.string(),
  lines: z.array(z.object({ sku: z.string(), qty: z.number().int().positive() })),
  note: z.string(),
});
