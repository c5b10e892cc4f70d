import { describe, expect, it } from 'vitest';
import { barChart, lineChart, recordsToCsv, renderReport, toCsv } from './index.js';

describe('report', () => {
  it('renders a self-contained HTML page with an SVG chart and an escaped table', async () => {
    const html = await renderReport({
      title: 'Energy <test>',
      intro: 'first paragraph\n\nsecond',
      sections: [
        {
          heading: 'Results',
          table: {
            columns: ['policy', 'kWh'],
            rows: [
              ['LR-MMT', 163.48],
              ['a&b', 1],
            ],
          },
          charts: [
            lineChart({
              title: 'power',
              values: [
                { t: 0, w: 1 },
                { t: 1, w: 3 },
              ],
              x: 't',
              y: 'w',
            }),
            barChart({
              title: 'bars',
              values: [
                { p: 'a', v: 1 },
                { p: 'b', v: 2 },
              ],
              category: 'p',
              value: 'v',
            }),
          ],
        },
      ],
    });
    expect(html).toContain('<title>Energy &#60;test&#62;</title>');
    expect(html.match(/<svg/g)?.length).toBe(2);
    expect(html).toContain('a&#38;b');
    expect(html).toContain('<p>second</p>');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });

  it('writes RFC 4180 CSV', () => {
    expect(
      toCsv(
        ['a', 'b'],
        [
          [1, 'x,y'],
          ['q"', null],
        ],
      ),
    ).toBe('a,b\n1,"x,y"\n"q""",\n');
    expect(recordsToCsv([{ a: 1, b: 2 }])).toBe('a,b\n1,2\n');
  });
});
