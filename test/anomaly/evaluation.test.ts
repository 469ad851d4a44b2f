import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { evaluate, INCIDENT_EFFECT, type EvaluationRow } from './synthetic.js';

/**
 * The proof of docs/anomaly-detection.md: five weeks of synthetic flow (daily and weekly season,
 * Poisson noise, overdispersion, drift) per traffic level and seed; three weeks of history, then
 * two evaluation weeks run twice: clean, and with twelve injected incidents (each kind twice, at
 * random hours). Run this file to print the table the doc quotes.
 */

const SEEDS = [1, 2, 3];
const RATES = [1, 5, 20];

describe('anomaly detection on synthetic flow', () => {
  const rows: EvaluationRow[] = [];
  for (const rate of RATES)
    for (const seed of SEEDS)
      test(`${rate} events/s at peak, seed ${seed}`, () => {
        const row = evaluate(seed, rate);
        rows.push(row);
        assert.equal(row.found, row.incidents, `missed: ${row.missed.join(', ')}`);
        assert.equal(row.strayAlerts, 0, 'alerts outside the incidents');
        assert.equal(row.cleanAlerts, 0, 'alerts on the clean evaluation weeks');
        // A typical service (≥ 5 events/s at peak): every incident within two 5-minute windows.
        if (rate >= 5) assert.equal(row.foundInTwoWindows, row.incidents, `late: ${row.missed.join(', ')}`);
      });

  test('summary', (t) => {
    for (const rate of RATES) {
      const mine = rows.filter((r) => r.ratePerSecond === rate);
      const incidents = mine.reduce((a, r) => a + r.incidents, 0);
      const found = mine.reduce((a, r) => a + r.found, 0);
      const inTwo = mine.reduce((a, r) => a + r.foundInTwoWindows, 0);
      const clean = mine.reduce((a, r) => a + r.cleanAlerts, 0);
      const warm = mine.reduce((a, r) => a + r.cleanWarmupAlerts, 0);
      const seriesWeeks = mine.reduce((a, r) => a + r.cleanSeriesWeeks, 0);
      const maxDelay = Math.max(...mine.map((r) => r.maxDelayMin));
      t.diagnostic(
        `${rate}/s: recall ${found}/${incidents}, within 2 windows ${inTwo}/${incidents}, max delay ${maxDelay} min; ` +
          `clean evaluation weeks: ${clean} alerts in ${seriesWeeks} series-weeks; warm-up weeks (short-term baseline): ${warm} alerts`,
      );
    }
    t.diagnostic(
      `incidents: ${Object.entries(INCIDENT_EFFECT)
        .map(([k, v]) => `${k} = ${v.label}`)
        .join('; ')}`,
    );
    assert.equal(rows.length, RATES.length * SEEDS.length);
  });
});
