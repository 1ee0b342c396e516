'use strict';
// The client IP key `ip:<addr>`, the same in both clients (clients/conformance/ip_keys.json):
// IPv4 as a dotted quad; IPv4-mapped IPv6 (::ffff:a.b.c.d) read as IPv4; other IPv6 grouped
// by /64 (one customer's whole subnet is one client), written as the RFC 5952 text of the
// network address plus `/64`: lowercase, leading zeros dropped, the longest run of two or
// more zero groups (the first on a tie) as `::`. Anything else is kept as given (`ip:unknown` when empty).
//
// PURE: no I/O.

const net = require('net');

/** The eight 16-bit groups of an IPv6 address (zone removed), or null. */
function groups(a) {
  if (!net.isIPv6(a)) return null;
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1].split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

/** RFC 5952 text of eight groups. */
function format(g) {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** `ip:a.b.c.d`, or `ip:<network>/64` for IPv6 (see above). */
function ipKey(address) {
  if (!address) return 'ip:unknown';
  let a = String(address).trim();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (net.isIPv4(a)) return `ip:${a}`;
  const g = groups(a);
  if (!g) return `ip:${String(address)}`;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `ip:${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  return `ip:${format([...g.slice(0, 4), 0, 0, 0, 0])}/64`;
}

module.exports = { ipKey };
