// Byte sizes for people: the one JavaScript mirror of byte_size in zishu/sizes.py (IEC units,
// one decimal, half up on exact integers). tests/test_sizes.py runs both on the same numbers.
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function formatBytes(n) {
  if (n === null || n === undefined) return "—";
  const bytes = Math.trunc(Number(n));
  if (bytes < 0) return `-${formatBytes(-bytes)}`;
  if (bytes < 1024) return `${bytes} B`;
  for (let power = 1; power < UNITS.length; power += 1) {
    const step = 1024 ** power;
    const tenths = Math.floor((bytes * 20 + step) / (2 * step)); // exact: step is a power of two
    if (tenths < 10240 || power === UNITS.length - 1) {
      return `${Math.floor(tenths / 10)}.${tenths % 10} ${UNITS[power]}`;
    }
  }
  return `${bytes} B`;
}

// What a download weighs: `known` bytes, "at least" that when some part's size is unknown
// (`exact` false), "size unknown" when nothing of it is known, "nothing to download" for a
// resource without files (download_size in zishu/sizes.py).
export function formatDownloadSize(known, exact) {
  if (!known) return exact ? "nothing to download" : "size unknown";
  const label = formatBytes(known || 0);
  return exact ? label : `at least ${label}`;
}
