// Reproduces le0pard/pgtune src/features/configuration/configurationSlice.js (newest indexed version, newer than commit 421728c2f26fae14285f9805d31198b98925d697; 2026)

export type PgtuneInput = Parameters<typeof pgtune>[0];
export type PgtuneWorkload = PgtuneInput['workload'];
export type PgtuneStorage = PgtuneInput['storage'];
export type PgtuneDbSize = NonNullable<PgtuneInput['dbSize']>;

const KB_PER_MB = 1024;
const KB_PER_GB = 1024 * 1024;
// PGTune's form rejects less than 512 MB (validation.js MIN_MB_MEMORY).
const MIN_MEMORY_BYTES = 512 * 1024 * 1024;

const WORKLOADS: readonly PgtuneWorkload[] = ['web', 'oltp', 'dw', 'mixed', 'desktop'];
const STORAGES: readonly PgtuneStorage[] = ['ssd', 'hdd', 'nvme', 'san'];
const DB_SIZES: readonly PgtuneDbSize[] = ['less_ram', 'mid_ram', 'greater_ram'];

const DEFAULT_CONNECTIONS: Record<PgtuneWorkload, number> = { web: 200, oltp: 300, dw: 40, desktop: 20, mixed: 100 };
const WORK_MEM_DIVISOR: Record<PgtuneWorkload, number> = { web: 1, oltp: 1, dw: 2, desktop: 6, mixed: 2 };
const MIN_WAL_MB: Record<PgtuneWorkload, number> = { web: 1024, oltp: 2048, dw: 4096, desktop: 100, mixed: 1024 };
const MAX_WAL_MB: Record<PgtuneWorkload, number> = { web: 4096, oltp: 8192, dw: 16384, desktop: 2048, mixed: 4096 };
const IO_CONCURRENCY: Record<PgtuneStorage, number> = { hdd: 2, ssd: 200, san: 300, nvme: 1000 };

// PGTune's formatValue: use MB/GB only when the kB value divides exactly.
function formatKb(kb: number): string {
  if (kb % KB_PER_GB === 0) return `${kb / KB_PER_GB}GB`;
  if (kb % KB_PER_MB === 0) return `${kb / KB_PER_MB}MB`;
  return `${kb}kB`;
}

function assertOneOf<T>(field: string, value: T, accepted: readonly T[]): void {
  if (!accepted.includes(value)) {
    throw new Error(`pgtune: ${field} must be one of ${accepted.join(', ')}; got ${String(value)}`);
  }
}

export function pgtune(input: {
  pgVersion: number;
  workload: 'web' | 'oltp' | 'dw' | 'mixed' | 'desktop';
  memoryBytes: number;
  cpus?: number;
  maxConnections?: number;
  storage: 'ssd' | 'hdd' | 'nvme' | 'san';
  dbSize?: 'less_ram' | 'mid_ram' | 'greater_ram';
}): Record<string, string> {
  const { pgVersion, workload, memoryBytes, storage, dbSize = 'mid_ram' } = input; // mid_ram is PGTune's form default
  if (!Number.isInteger(pgVersion) || pgVersion < 13 || pgVersion > 18) {
    throw new Error(`pgtune: pgVersion must be an integer from 13 to 18; got ${pgVersion}`);
  }
  if (!(memoryBytes >= MIN_MEMORY_BYTES)) {
    throw new Error(`pgtune: memoryBytes must be at least ${MIN_MEMORY_BYTES} (512 MiB, PGTune's minimum); got ${memoryBytes}`);
  }
  assertOneOf('workload', workload, WORKLOADS);
  assertOneOf('storage', storage, STORAGES);
  assertOneOf('dbSize', dbSize, DB_SIZES);

  // PGTune treats 0/empty cpus and connections as "not given".
  const cpus = input.cpus || null;
  const maxConnections = input.maxConnections || DEFAULT_CONNECTIONS[workload];
  const kb = memoryBytes / 1024;
  const dw = workload === 'dw';
  const desktop = workload === 'desktop';

  const sharedBuffers = Math.floor(kb / (desktop ? 16 : 4));
  const effectiveCacheSize = Math.floor(desktop ? kb / 4 : (kb * 3) / 4);
  const maintenanceWorkMem = Math.min(Math.floor(kb / (dw ? 8 : 16)), 8 * KB_PER_GB);

  // 3% of shared_buffers, capped at 16MB; anything above 14MB is rounded up to 16MB; floor 32kB.
  let walBuffers = Math.min(Math.floor((3 * sharedBuffers) / 100), 16 * KB_PER_MB);
  if (walBuffers > 14 * KB_PER_MB) walBuffers = 16 * KB_PER_MB;
  walBuffers = Math.max(walBuffers, 32);

  // A DB that fits in RAM never seeks; DW on fast disks keeps the default 4 to avoid bad index scans.
  const randomPageCost = dbSize === 'less_ram' ? 1.1 : storage === 'hdd' || dw ? 4 : 1.1;

  // Parallel settings are emitted only with 4+ CPUs.
  const parallel: [string, number][] = [];
  if (cpus && cpus >= 4) {
    const half = Math.ceil(cpus / 2);
    parallel.push(
      ['max_worker_processes', cpus],
      ['max_parallel_workers_per_gather', dw ? half : Math.min(half, 4)],
      ['max_parallel_workers', cpus],
      ['max_parallel_maintenance_workers', Math.min(half, 4)],
    );
  }

  // (RAM - shared_buffers) / ((connections + max_worker_processes) * 3); without parallel
  // settings PGTune assumes PostgreSQL's default max_worker_processes of 8.
  const workers = parallel.length ? (cpus as number) : 8;
  let workMem = Math.floor((kb - sharedBuffers) / ((maxConnections + workers) * 3) / WORK_MEM_DIVISOR[workload]);
  if (dbSize === 'less_ram') workMem = Math.floor(workMem * 1.3);
  else if (dbSize === 'greater_ram') workMem = Math.floor(workMem * 0.9);
  workMem = Math.max(workMem, 4 * KB_PER_MB);

  const autovacuumMaxWorkers = cpus && cpus >= 32 ? 5 : cpus && cpus >= 16 ? 4 : null;
  // Only set when maintenance_work_mem reaches 2GB, so vacuum workers stay at 2GB each.
  const autovacuumWorkMem = maintenanceWorkMem >= 2 * KB_PER_GB ? 2 * KB_PER_GB : null;
  // PGTune (as read) emits io_workers even alongside io_uring, where PG ignores it.
  const ioWorkers = pgVersion >= 18 && cpus ? Math.min(32, Math.max(3, Math.floor(cpus / 4))) : 0;

  const entries: [string, string | number | null][] = [
    ['max_connections', maxConnections],
    ['shared_buffers', formatKb(sharedBuffers)],
    ['effective_cache_size', formatKb(effectiveCacheSize)],
    ['maintenance_work_mem', formatKb(maintenanceWorkMem)],
    ['checkpoint_completion_target', 0.9],
    ['wal_buffers', formatKb(walBuffers)],
    ['default_statistics_target', dw ? 500 : 100],
    ['random_page_cost', randomPageCost],
    ['effective_io_concurrency', IO_CONCURRENCY[storage]],
    ['work_mem', formatKb(workMem)],
    ['huge_pages', sharedBuffers >= 2 * KB_PER_GB ? 'try' : 'off'],
    ['jit', dw || desktop ? null : 'off'],
    ['wal_compression', pgVersion >= 15 ? 'lz4' : 'on'],
    ['autovacuum_max_workers', autovacuumMaxWorkers],
    ['autovacuum_work_mem', autovacuumWorkMem && formatKb(autovacuumWorkMem)],
    ['io_method', pgVersion >= 18 ? 'io_uring' : null],
    ['io_workers', ioWorkers > 3 ? ioWorkers : null],
    ['min_wal_size', formatKb(MIN_WAL_MB[workload] * KB_PER_MB)],
    ['max_wal_size', formatKb(MAX_WAL_MB[workload] * KB_PER_MB)],
    ...parallel,
    ...(desktop ? ([['wal_level', 'minimal'], ['max_wal_senders', '0']] as [string, string][]) : []),
  ];

  // PGTune drops falsy values (its `!!item[1]` filter) and prints the rest in this order.
  const result: Record<string, string> = {};
  for (const [key, value] of entries) if (value) result[key] = String(value);
  return result;
}
