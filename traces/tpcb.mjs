// A TPC-B-like workload for sqlite3 (the pgbench default): SQL on stdout. Deterministic (seeded LCG).
//   node traces/tpcb.mjs [transactions] [accounts] > /tmp/tpcb.sql
const txns = Number(process.argv[2] ?? 30000);
const accounts = Number(process.argv[3] ?? 20000);
const tellers = 10;
let seed = 42;
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return 1 + (seed % n);
};
const out = [];
out.push('PRAGMA journal_mode = WAL;', 'PRAGMA synchronous = OFF;', 'PRAGMA cache_size = -8000;');
out.push('CREATE TABLE branches (bid INTEGER PRIMARY KEY, bbalance INTEGER, filler TEXT);');
out.push('CREATE TABLE tellers (tid INTEGER PRIMARY KEY, bid INTEGER, tbalance INTEGER, filler TEXT);');
out.push('CREATE TABLE accounts (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler TEXT);');
out.push(
  'CREATE TABLE history (tid INTEGER, bid INTEGER, aid INTEGER, delta INTEGER, mtime TEXT, filler TEXT);',
);
out.push(`INSERT INTO branches VALUES (1, 0, '${' '.repeat(88)}');`);
out.push(
  `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${tellers}) INSERT INTO tellers SELECT i, 1, 0, printf('%84s', '') FROM n;`,
);
out.push(
  `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${accounts}) INSERT INTO accounts SELECT i, 1, 0, printf('%84s', '') FROM n;`,
);
for (let t = 0; t < txns; t++) {
  const aid = rnd(accounts);
  const tid = rnd(tellers);
  const delta = rnd(10000) - 5000;
  out.push(
    `BEGIN; UPDATE accounts SET abalance = abalance + ${delta} WHERE aid = ${aid}; ` +
      `SELECT abalance FROM accounts WHERE aid = ${aid}; ` +
      `UPDATE tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid}; ` +
      `UPDATE branches SET bbalance = bbalance + ${delta} WHERE bid = 1; ` +
      `INSERT INTO history VALUES (${tid}, 1, ${aid}, ${delta}, '2026-01-01 00:00:${String(t % 60).padStart(2, '0')}', '${' '.repeat(22)}'); COMMIT;`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
