import { pgtune, PgtuneInput } from '../../config-templates/pgtune';

// Expected values are hand-computed from PGTune's configurationSlice.js, never from pgtune().
// kB of RAM: 1 GiB = 1048576, 8 GiB = 8388608, 64 GiB = 67108864 (1GB = 1048576 kB, 1MB = 1024 kB).
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const cases: { name: string; input: PgtuneInput; expected: Record<string, string> }[] = [
  {
    // Prod seed. sb = 8388608/4 = 2097152 (2GB, >= 2GB so huge_pages=try); ecs = 3/4 = 6GB; mwm = /16 = 512MB;
    // wal = 3% of sb = 62914 -> capped 16MB; work_mem = 6291456 / ((300+4)*3) = 6898.5 -> 6898kB.
    name: 'PG17 web ssd 8GiB 4cpu 300conn (prod seed)',
    input: { pgVersion: 17, workload: 'web', memoryBytes: 8 * GiB, cpus: 4, maxConnections: 300, storage: 'ssd' },
    expected: {
      max_connections: '300',
      shared_buffers: '2GB',
      effective_cache_size: '6GB',
      maintenance_work_mem: '512MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '200',
      work_mem: '6898kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
      max_worker_processes: '4',
      max_parallel_workers_per_gather: '2', // ceil(4/2)
      max_parallel_workers: '4',
      max_parallel_maintenance_workers: '2',
    },
  },
  {
    // 200 default conns, no cpus -> 8 default workers: 786432 / (208*3) = 1260 -> floored up to 4MB.
    // wal = 3% of 262144 = 7864.32 -> 7864kB. PG13 -> wal_compression=on.
    name: 'PG13 web hdd 1GiB, no cpus/conns',
    input: { pgVersion: 13, workload: 'web', memoryBytes: 1 * GiB, storage: 'hdd' },
    expected: {
      max_connections: '200',
      shared_buffers: '256MB',
      effective_cache_size: '768MB',
      maintenance_work_mem: '64MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '7864kB',
      default_statistics_target: '100',
      random_page_cost: '4',
      effective_io_concurrency: '2',
      work_mem: '4MB',
      huge_pages: 'off',
      jit: 'off',
      wal_compression: 'on',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
    },
  },
  {
    // 300 default conns: 6291456 / ((300+8)*3) = 6808.9 -> 6808kB; per-gather ceil(8/2) = 4.
    name: 'PG14 oltp san 8GiB 8cpu, default conns',
    input: { pgVersion: 14, workload: 'oltp', memoryBytes: 8 * GiB, cpus: 8, storage: 'san' },
    expected: {
      max_connections: '300',
      shared_buffers: '2GB',
      effective_cache_size: '6GB',
      maintenance_work_mem: '512MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '300',
      work_mem: '6808kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'on',
      min_wal_size: '2GB',
      max_wal_size: '8GB',
      max_worker_processes: '8',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '8',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // dw: mwm = 67108864/8 = 8388608 = 8GB cap -> autovacuum_work_mem 2GB; rpc 4 (dw, not less_ram).
    // work_mem = 50331648 / ((40+32)*3) = 233016.9, /2 = 116508.4 -> 116508kB (not MB-exact).
    // 32 cpus -> autovacuum_max_workers 5; dw has no per-gather cap: ceil(32/2) = 16. No jit for dw.
    name: 'PG15 dw nvme 64GiB 32cpu, default conns',
    input: { pgVersion: 15, workload: 'dw', memoryBytes: 64 * GiB, cpus: 32, storage: 'nvme' },
    expected: {
      max_connections: '40',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '8GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '500',
      random_page_cost: '4',
      effective_io_concurrency: '1000',
      work_mem: '116508kB',
      huge_pages: 'try',
      wal_compression: 'lz4',
      autovacuum_max_workers: '5',
      autovacuum_work_mem: '2GB',
      min_wal_size: '4GB',
      max_wal_size: '16GB',
      max_worker_processes: '32',
      max_parallel_workers_per_gather: '16',
      max_parallel_workers: '32',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // desktop: sb = 1048576/16 = 65536 (64MB); ecs = /4 = 256MB; wal = 1966.08 -> 1966kB;
    // work_mem = 983040 / ((20+8)*3) / 6 = 1950 -> 4MB floor. No jit; wal_level minimal.
    name: 'PG16 desktop ssd 1GiB, no cpus/conns',
    input: { pgVersion: 16, workload: 'desktop', memoryBytes: 1 * GiB, storage: 'ssd' },
    expected: {
      max_connections: '20',
      shared_buffers: '64MB',
      effective_cache_size: '256MB',
      maintenance_work_mem: '64MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '1966kB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '200',
      work_mem: '4MB',
      huge_pages: 'off',
      wal_compression: 'lz4',
      min_wal_size: '100MB',
      max_wal_size: '2GB',
      wal_level: 'minimal',
      max_wal_senders: '0',
    },
  },
  {
    // work_mem = 6291456 / ((100+16)*3) = 18078.9, /2 = 9039.4 -> 9039kB. 16 cpus -> autovacuum 4,
    // io_workers floor(16/4) = 4 (> 3 default). per-gather ceil(16/2) = 8 -> capped 4.
    name: 'PG18 mixed hdd 8GiB 16cpu 100conn',
    input: { pgVersion: 18, workload: 'mixed', memoryBytes: 8 * GiB, cpus: 16, maxConnections: 100, storage: 'hdd' },
    expected: {
      max_connections: '100',
      shared_buffers: '2GB',
      effective_cache_size: '6GB',
      maintenance_work_mem: '512MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '4',
      effective_io_concurrency: '2',
      work_mem: '9039kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      autovacuum_max_workers: '4',
      io_method: 'io_uring',
      io_workers: '4',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
      max_worker_processes: '16',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '16',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // mwm = 67108864/16 = 4GB (>= 2GB -> autovacuum_work_mem 2GB).
    // work_mem = 50331648 / ((500+64)*3) = 29746.8 -> 29746, less_ram *1.3 = 38669.8 -> 38669kB.
    // io_workers floor(64/4) = 16.
    name: 'PG18 web nvme 64GiB 64cpu 500conn less_ram',
    input: {
      pgVersion: 18, workload: 'web', memoryBytes: 64 * GiB, cpus: 64, maxConnections: 500, storage: 'nvme', dbSize: 'less_ram',
    },
    expected: {
      max_connections: '500',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '4GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '1000',
      work_mem: '38669kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      autovacuum_max_workers: '5',
      autovacuum_work_mem: '2GB',
      io_method: 'io_uring',
      io_workers: '16',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
      max_worker_processes: '64',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '64',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // less_ram overrides dw's 4 -> rpc 1.1. work_mem = 50331648 / ((40+8)*3) = 349525.3, /2 = 174762.7
    // -> 174762, *1.3 = 227190.6 -> 227190kB. io_workers max(3, floor(8/4)=2) = 3 -> not above default, omitted.
    name: 'PG18 dw ssd 64GiB 8cpu less_ram',
    input: { pgVersion: 18, workload: 'dw', memoryBytes: 64 * GiB, cpus: 8, storage: 'ssd', dbSize: 'less_ram' },
    expected: {
      max_connections: '40',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '8GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '500',
      random_page_cost: '1.1',
      effective_io_concurrency: '200',
      work_mem: '227190kB',
      huge_pages: 'try',
      wal_compression: 'lz4',
      autovacuum_work_mem: '2GB',
      io_method: 'io_uring',
      min_wal_size: '4GB',
      max_wal_size: '16GB',
      max_worker_processes: '8',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '8',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // No cpus -> 8 workers: 50331648 / ((1000+8)*3) = 16644.06 -> 16644, greater_ram *0.9 = 14979.6 -> 14979kB.
    name: 'PG17 oltp nvme 64GiB 1000conn greater_ram, no cpus',
    input: { pgVersion: 17, workload: 'oltp', memoryBytes: 64 * GiB, maxConnections: 1000, storage: 'nvme', dbSize: 'greater_ram' },
    expected: {
      max_connections: '1000',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '4GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '1000',
      work_mem: '14979kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      autovacuum_work_mem: '2GB',
      min_wal_size: '2GB',
      max_wal_size: '8GB',
    },
  },
  {
    // 2 cpus (< 4): no parallel settings, work_mem still assumes 8 workers:
    // 6291456 / ((50+8)*3) = 36157.8, /2 = 18078.9 -> 18078kB. mwm = 8388608/8 = 1GB.
    name: 'PG13 dw hdd 8GiB 2cpu 50conn',
    input: { pgVersion: 13, workload: 'dw', memoryBytes: 8 * GiB, cpus: 2, maxConnections: 50, storage: 'hdd' },
    expected: {
      max_connections: '50',
      shared_buffers: '2GB',
      effective_cache_size: '6GB',
      maintenance_work_mem: '1GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '500',
      random_page_cost: '4',
      effective_io_concurrency: '2',
      work_mem: '18078kB',
      huge_pages: 'try',
      wal_compression: 'on',
      min_wal_size: '4GB',
      max_wal_size: '16GB',
    },
  },
  {
    // sb = 8388608/16 = 512MB; wal = 3% = 15728 kB, between 14MB and 16MB -> rounded up to 16MB.
    // work_mem = 7864320 / ((20+4)*3) = 109226.7, /6 = 18204.4 -> 18204kB. huge_pages off (< 2GB).
    name: 'PG14 desktop nvme 8GiB 4cpu',
    input: { pgVersion: 14, workload: 'desktop', memoryBytes: 8 * GiB, cpus: 4, storage: 'nvme' },
    expected: {
      max_connections: '20',
      shared_buffers: '512MB',
      effective_cache_size: '2GB',
      maintenance_work_mem: '512MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '1000',
      work_mem: '18204kB',
      huge_pages: 'off',
      wal_compression: 'on',
      min_wal_size: '100MB',
      max_wal_size: '2GB',
      max_worker_processes: '4',
      max_parallel_workers_per_gather: '2',
      max_parallel_workers: '4',
      max_parallel_maintenance_workers: '2',
      wal_level: 'minimal',
      max_wal_senders: '0',
    },
  },
  {
    // work_mem = 786432 / ((20+4)*3) = 10922.7, /2 = 5461.3 -> 5461kB.
    name: 'PG15 mixed san 1GiB 4cpu 20conn',
    input: { pgVersion: 15, workload: 'mixed', memoryBytes: 1 * GiB, cpus: 4, maxConnections: 20, storage: 'san' },
    expected: {
      max_connections: '20',
      shared_buffers: '256MB',
      effective_cache_size: '768MB',
      maintenance_work_mem: '64MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '7864kB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '300',
      work_mem: '5461kB',
      huge_pages: 'off',
      jit: 'off',
      wal_compression: 'lz4',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
      max_worker_processes: '4',
      max_parallel_workers_per_gather: '2',
      max_parallel_workers: '4',
      max_parallel_maintenance_workers: '2',
    },
  },
  {
    // work_mem = 50331648 / ((200+24)*3) = 74898.3 -> 74898, *0.9 = 67408.2 -> 67408kB. 24 cpus -> autovacuum 4.
    name: 'PG16 web san 64GiB 24cpu greater_ram, default conns',
    input: { pgVersion: 16, workload: 'web', memoryBytes: 64 * GiB, cpus: 24, storage: 'san', dbSize: 'greater_ram' },
    expected: {
      max_connections: '200',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '4GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '300',
      work_mem: '67408kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      autovacuum_max_workers: '4',
      autovacuum_work_mem: '2GB',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
      max_worker_processes: '24',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '24',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // dw on san keeps rpc 4. work_mem = 6291456 / ((40+4)*3) = 47662.5, /2 = 23831.3 -> 23831, *0.9 = 21447.9 -> 21447kB.
    name: 'PG17 dw san 8GiB 4cpu greater_ram',
    input: { pgVersion: 17, workload: 'dw', memoryBytes: 8 * GiB, cpus: 4, storage: 'san', dbSize: 'greater_ram' },
    expected: {
      max_connections: '40',
      shared_buffers: '2GB',
      effective_cache_size: '6GB',
      maintenance_work_mem: '1GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '500',
      random_page_cost: '4',
      effective_io_concurrency: '300',
      work_mem: '21447kB',
      huge_pages: 'try',
      wal_compression: 'lz4',
      min_wal_size: '4GB',
      max_wal_size: '16GB',
      max_worker_processes: '4',
      max_parallel_workers_per_gather: '2',
      max_parallel_workers: '4',
      max_parallel_maintenance_workers: '2',
    },
  },
  {
    // less_ram beats hdd -> rpc 1.1. work_mem 1950 (see PG16 desktop) *1.3 = 2535 -> 4MB floor.
    // PG18 without cpus: io_method only, no io_workers.
    name: 'PG18 desktop hdd 1GiB less_ram, no cpus',
    input: { pgVersion: 18, workload: 'desktop', memoryBytes: 1 * GiB, storage: 'hdd', dbSize: 'less_ram' },
    expected: {
      max_connections: '20',
      shared_buffers: '64MB',
      effective_cache_size: '256MB',
      maintenance_work_mem: '64MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '1966kB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '2',
      work_mem: '4MB',
      huge_pages: 'off',
      wal_compression: 'lz4',
      io_method: 'io_uring',
      min_wal_size: '100MB',
      max_wal_size: '2GB',
      wal_level: 'minimal',
      max_wal_senders: '0',
    },
  },
  {
    // work_mem = 50331648 / ((2000+128)*3) = 7884.03 -> 7884kB.
    name: 'PG13 oltp ssd 64GiB 128cpu 2000conn',
    input: { pgVersion: 13, workload: 'oltp', memoryBytes: 64 * GiB, cpus: 128, maxConnections: 2000, storage: 'ssd' },
    expected: {
      max_connections: '2000',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '4GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '200',
      work_mem: '7884kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'on',
      autovacuum_max_workers: '5',
      autovacuum_work_mem: '2GB',
      min_wal_size: '2GB',
      max_wal_size: '8GB',
      max_worker_processes: '128',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '128',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // work_mem = 50331648 / ((300+256)*3) = 30174.8 -> 30174kB. io_workers floor(256/4) = 64 -> capped 32.
    name: 'PG18 oltp hdd 64GiB 256cpu, default conns',
    input: { pgVersion: 18, workload: 'oltp', memoryBytes: 64 * GiB, cpus: 256, storage: 'hdd' },
    expected: {
      max_connections: '300',
      shared_buffers: '16GB',
      effective_cache_size: '48GB',
      maintenance_work_mem: '4GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '4',
      effective_io_concurrency: '2',
      work_mem: '30174kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      autovacuum_max_workers: '5',
      autovacuum_work_mem: '2GB',
      io_method: 'io_uring',
      io_workers: '32',
      min_wal_size: '2GB',
      max_wal_size: '8GB',
      max_worker_processes: '256',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '256',
      max_parallel_maintenance_workers: '4',
    },
  },
  {
    // Explicit mid_ram = default. work_mem = 6291456 / ((100+8)*3) = 19418.1, /2 = 9709.04 -> 9709kB.
    name: 'PG16 mixed nvme 8GiB mid_ram, no cpus/conns',
    input: { pgVersion: 16, workload: 'mixed', memoryBytes: 8 * GiB, storage: 'nvme', dbSize: 'mid_ram' },
    expected: {
      max_connections: '100',
      shared_buffers: '2GB',
      effective_cache_size: '6GB',
      maintenance_work_mem: '512MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '1000',
      work_mem: '9709kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
    },
  },
  {
    // Minimum memory (512 MiB = 524288 kB): sb 131072 = 128MB; ecs 393216 = 384MB; mwm 32768 = 32MB;
    // wal 3 * 131072 / 100 = 3932.16 -> 3932kB; work_mem 393216 / 624 = 630 -> 4MB.
    name: 'PG17 web ssd 512MiB (PGTune minimum)',
    input: { pgVersion: 17, workload: 'web', memoryBytes: 512 * MiB, storage: 'ssd' },
    expected: {
      max_connections: '200',
      shared_buffers: '128MB',
      effective_cache_size: '384MB',
      maintenance_work_mem: '32MB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '3932kB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '200',
      work_mem: '4MB',
      huge_pages: 'off',
      jit: 'off',
      wal_compression: 'lz4',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
    },
  },
  {
    // 192 GiB = 201326592 kB: sb 50331648 = 48GB; ecs 150994944 = 144GB; mwm /16 = 12GB -> capped 8GB.
    // work_mem = 150994944 / ((200+16)*3) = 233016.9 -> 233016kB.
    name: 'PG18 web ssd 192GiB 16cpu (maintenance_work_mem 8GB cap)',
    input: { pgVersion: 18, workload: 'web', memoryBytes: 192 * GiB, cpus: 16, storage: 'ssd' },
    expected: {
      max_connections: '200',
      shared_buffers: '48GB',
      effective_cache_size: '144GB',
      maintenance_work_mem: '8GB',
      checkpoint_completion_target: '0.9',
      wal_buffers: '16MB',
      default_statistics_target: '100',
      random_page_cost: '1.1',
      effective_io_concurrency: '200',
      work_mem: '233016kB',
      huge_pages: 'try',
      jit: 'off',
      wal_compression: 'lz4',
      autovacuum_max_workers: '4',
      autovacuum_work_mem: '2GB',
      io_method: 'io_uring',
      io_workers: '4',
      min_wal_size: '1GB',
      max_wal_size: '4GB',
      max_worker_processes: '16',
      max_parallel_workers_per_gather: '4',
      max_parallel_workers: '16',
      max_parallel_maintenance_workers: '4',
    },
  },
];

describe('pgtune', () => {
  test.each(cases)('$name', ({ input, expected }) => {
    const result = pgtune(input);
    expect(result).toEqual(expected);
    // PGTune's print order is part of the contract (object insertion order).
    expect(Object.keys(result)).toEqual(Object.keys(expected));
  });

  test('prod seed gives shared_buffers 2GB and effective_cache_size 6GB', () => {
    const r = pgtune({ pgVersion: 17, workload: 'web', memoryBytes: 8 * GiB, cpus: 4, maxConnections: 300, storage: 'ssd' });
    expect(r.shared_buffers).toBe('2GB');
    expect(r.effective_cache_size).toBe('6GB');
  });

  test('cpus 0 and maxConnections 0 count as not given, like PGTune', () => {
    const base = { pgVersion: 16, workload: 'mixed', memoryBytes: 8 * GiB, storage: 'nvme' } as const;
    expect(pgtune({ ...base, cpus: 0, maxConnections: 0 })).toEqual(pgtune(base));
  });

  const valid: PgtuneInput = { pgVersion: 17, workload: 'web', memoryBytes: 8 * GiB, storage: 'ssd' };

  test.each([12, 19, 17.5, NaN])('rejects pgVersion %p', (pgVersion) => {
    expect(() => pgtune({ ...valid, pgVersion })).toThrow(/pgVersion must be an integer from 13 to 18/);
  });

  test.each([512 * MiB - 1, 256 * MiB, 0, NaN])('rejects memoryBytes %p below the 512 MiB minimum', (memoryBytes) => {
    expect(() => pgtune({ ...valid, memoryBytes })).toThrow(/memoryBytes must be at least 536870912 \(512 MiB/);
  });

  test('rejects unknown workload, storage and dbSize, listing accepted values', () => {
    expect(() => pgtune({ ...valid, workload: 'olap' as never })).toThrow('workload must be one of web, oltp, dw, mixed, desktop; got olap');
    expect(() => pgtune({ ...valid, storage: 'tape' as never })).toThrow('storage must be one of ssd, hdd, nvme, san; got tape');
    expect(() => pgtune({ ...valid, dbSize: 'huge' as never })).toThrow('dbSize must be one of less_ram, mid_ram, greater_ram; got huge');
  });
});
