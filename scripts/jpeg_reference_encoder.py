"""A small JPEG encoder used only to make test streams the project's tools cannot:
lossless with restart intervals, 2-bit precision, the 16-bit difference 32768, four
components; sequential DCT with restart intervals, 4:2:0 sampling, non-interleaved scans
and 16-bit quantisation tables. Every stream it writes is decoded by the reference
(pydicom + pylibjpeg-libjpeg) to produce the expected values: this encoder is never the
judge of its own output.
"""
import heapq
import math
import struct

import numpy as np


class BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, length):
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = 0
                self.n = 0

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)


def segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def code_lengths(freqs):
    """Huffman code lengths limited to 16 bits (T.81 K.2 style), with a reserved
    all-ones code: symbols with frequency 0 get no code."""
    symbols = [s for s in range(256) if freqs.get(s, 0) > 0]
    heap = [(freqs[s], i, [s]) for i, s in enumerate(symbols)]
    heap.append((0, len(symbols), [256]))  # reserved code point
    heapq.heapify(heap)
    lengths = {s: 0 for s in symbols + [256]}
    if len(heap) == 1:
        lengths[heap[0][2][0]] = 1
    tie = len(heap) + 1
    while len(heap) > 1:
        f1, _, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (f1 + f2, tie, a + b))
        tie += 1
    bits = [0] * 33
    for s, l in lengths.items():
        bits[l] += 1
    # K.2 adjust_bits: move codes longer than 16 bits up the tree
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    # drop the reserved code (longest)
    for i in range(16, 0, -1):
        if bits[i]:
            bits[i] -= 1
            break
    order = sorted(symbols, key=lambda s: (lengths[s], -freqs[s], s))
    # assign lengths from the adjusted counts, shortest first to the most frequent
    order = sorted(symbols, key=lambda s: (-freqs[s], s))
    assigned = {}
    k = 0
    for l in range(1, 17):
        for _ in range(bits[l]):
            assigned[order[k]] = l
            k += 1
    return bits[1:17], assigned


def canonical(counts, lengths):
    symbols = sorted(lengths, key=lambda s: (lengths[s], s))
    codes = {}
    code = 0
    k = 0
    for l in range(1, 17):
        for _ in range(counts[l - 1]):
            codes[symbols[k]] = (code, l)
            code += 1
            k += 1
        code <<= 1
    return symbols, codes


def dht(tc, th, counts, symbols):
    return bytes([(tc << 4) | th]) + bytes(counts) + bytes(symbols)


def category(v):
    return 0 if v == 0 else int(abs(v)).bit_length()


def value_bits(v, s):
    return v if v >= 0 else (v - 1) & ((1 << s) - 1)


# ---------------------------------------------------------------------- lossless

def _predict(sv, a, b, c):
    return {1: a, 2: b, 3: c, 4: a + b - c, 5: a + ((b - c) >> 1), 6: b + ((a - c) >> 1), 7: (a + b) >> 1}[sv]


def lossless_differences(planes, precision, sv, pt, restart):
    """planes: list of 2-D int arrays (full-size components, interleaved scan)."""
    h, w = planes[0].shape
    shifted = [p.astype(np.int64) >> pt for p in planes]
    initial = 1 << (precision - pt - 1)
    diffs = []  # list of (mcu index, component, diff)
    mcu = 0
    interval_first_row = 0
    first_in_interval = True
    left_only_row = -1
    for y in range(h):
        for x in range(w):
            if restart and mcu > 0 and mcu % restart == 0:
                first_in_interval = True
            for ci, p in enumerate(shifted):
                if first_in_interval:
                    pred = initial
                elif y == 0 or left_only_row == y:
                    pred = int(p[y, x - 1])
                elif x == 0:
                    pred = int(p[y - 1, 0])
                else:
                    pred = _predict(sv, int(p[y, x - 1]), int(p[y - 1, x]), int(p[y - 1, x - 1]))
                d = (int(p[y, x]) - pred) & 0xFFFF
                if d >= 0x8000:
                    d -= 0x10000
                diffs.append((mcu, ci, d))
            if first_in_interval:
                left_only_row = y
                first_in_interval = False
            mcu += 1
    return diffs


def encode_lossless(planes, precision, sv=1, pt=0, restart=0, ids=None, separate_tables=False):
    n = len(planes)
    h, w = planes[0].shape
    ids = ids or list(range(1, n + 1))
    diffs = lossless_differences(planes, precision, sv, pt, restart)
    tables = []
    for t in range(n if separate_tables else 1):
        freqs = {}
        for _, ci, d in diffs:
            if separate_tables and ci != t:
                continue
            s = 16 if d == -32768 else category(d)
            freqs[s] = freqs.get(s, 0) + 1
        counts, lengths = code_lengths(freqs)
        symbols, codes = canonical(counts, lengths)
        tables.append((counts, symbols, codes))
    out = bytearray(b"\xFF\xD8")
    sof = bytes([precision]) + struct.pack(">HHB", h, w, n)
    for cid in ids:
        sof += bytes([cid, 0x11, 0])
    out += segment(0xC3, sof)
    for t, (counts, symbols, _) in enumerate(tables):
        out += segment(0xC4, dht(0, t, counts, symbols))
    if restart:
        out += segment(0xDD, struct.pack(">H", restart))
    sos = bytes([n])
    for ci, cid in enumerate(ids):
        sos += bytes([cid, ((ci if separate_tables else 0) << 4)])
    sos += bytes([sv, 0, pt])
    out += segment(0xDA, sos)
    bw = BitWriter()
    last_mcu = 0
    rst = 0
    for mcu, ci, d in diffs:
        if restart and mcu != last_mcu and mcu % restart == 0 and ci == 0:
            bw.flush()
            out += bw.out
            out += bytes([0xFF, 0xD0 + (rst & 7)])
            rst += 1
            bw = BitWriter()
        last_mcu = mcu
        codes = tables[ci if separate_tables else 0][2]
        if d == -32768:  # category 16: no value bits
            bw.put(*codes[16])
            continue
        s = category(d)
        bw.put(*codes[s])
        if s:
            bw.put(value_bits(d, s), s)
    bw.flush()
    out += bw.out
    out += b"\xFF\xD9"
    return bytes(out)


# ---------------------------------------------------------------------- sequential DCT

ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
          12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
          35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
          58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]

_C = np.array([[(math.sqrt(0.5) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
                for x in range(8)] for u in range(8)])


def _blocks(plane, bw, bh):
    """Pads a plane by edge replication to bw×bh blocks and yields (by, bx, block)."""
    h, w = plane.shape
    padded = np.pad(plane, ((0, bh * 8 - h), (0, bw * 8 - w)), mode="edge")
    return padded


def encode_sequential(planes, precision, sampling, qtables, restart=0, interleaved=True, ids=None):
    """planes: full-size component planes (ints); sampling: [(h, v)] per component;
    qtables: list of 64-entry natural-order arrays, one per component (may be shared)."""
    n = len(planes)
    H, W = planes[0].shape
    hmax = max(s[0] for s in sampling)
    vmax = max(s[1] for s in sampling)
    ids = ids or list(range(1, n + 1))
    mcux = -(-W // (8 * hmax))
    mcuy = -(-H // (8 * vmax))
    coefs = []
    for p, (h, v), q in zip(planes, sampling, qtables):
        # downsample by averaging
        fy, fx = vmax // v, hmax // h
        ch, cw = -(-H * v // vmax), -(-W * h // hmax)
        pp = np.pad(p.astype(np.float64), ((0, ch * fy - H), (0, cw * fx - W)), mode="edge")
        comp = pp.reshape(ch, fy, cw, fx).mean(axis=(1, 3))
        if interleaved or n == 1:
            bw, bh = mcux * h, mcuy * v
        else:
            bw, bh = -(-cw // 8), -(-ch // 8)
        padded = _blocks(comp, bw, bh) - (1 << (precision - 1))
        blocks = {}
        qn = np.array(q, dtype=np.float64).reshape(8, 8)
        for by in range(bh):
            for bx in range(bw):
                blk = padded[by * 8:by * 8 + 8, bx * 8:bx * 8 + 8]
                f = _C @ blk @ _C.T
                blocks[(by, bx)] = np.round(f / qn).astype(np.int64).reshape(64)
        coefs.append((blocks, bw, bh))
    # symbol streams per scan
    scans = []
    if interleaved or n == 1:
        order = []
        for my in range(mcuy):
            for mx in range(mcux):
                unit = []
                for ci, (h, v) in enumerate(sampling):
                    for yy in range(v):
                        for xx in range(h):
                            unit.append((ci, (my * v + yy, mx * h + xx)))
                order.append(unit)
        scans.append((list(range(n)), order))
    else:
        for ci in range(n):
            blocks, bw, bh = coefs[ci]
            scans.append(([ci], [[(ci, (by, bx))] for by in range(bh) for bx in range(bw)]))
    out = bytearray(b"\xFF\xD8")
    distinct_q = []
    for q in qtables:
        if not any(q is d for d in distinct_q):
            distinct_q.append(q)
    qid = [next(i for i, d in enumerate(distinct_q) if d is q) for q in qtables]
    for i, q in enumerate(distinct_q):
        wide = max(q) > 255
        payload = bytes([(1 if wide else 0) << 4 | i])
        for k in range(64):
            payload += struct.pack(">H", q[ZIGZAG[k]]) if wide else bytes([q[ZIGZAG[k]]])
        out += segment(0xDB, payload)
    sof = bytes([precision]) + struct.pack(">HHB", H, W, n)
    for ci in range(n):
        sof += bytes([ids[ci], sampling[ci][0] << 4 | sampling[ci][1], qid[ci]])
    out += segment(0xC0 if precision == 8 else 0xC1, sof)
    if restart:
        out += segment(0xDD, struct.pack(">H", restart))
    for comps, order in scans:
        # gather symbols to build optimal tables (one DC/AC pair per scan component)
        dcf = [dict() for _ in comps]
        acf = [dict() for _ in comps]
        symbols = []
        pred = {ci: 0 for ci in comps}
        for m, unit in enumerate(order):
            if restart and m > 0 and m % restart == 0:
                symbols.append(("rst",))
                pred = {ci: 0 for ci in comps}
            for ci, pos in unit:
                k = comps.index(ci)
                blk = coefs[ci][0][pos]
                diff = int(blk[0]) - pred[ci]
                pred[ci] = int(blk[0])
                s = category(diff)
                dcf[k][s] = dcf[k].get(s, 0) + 1
                symbols.append(("dc", k, s, diff))
                run = 0
                zz = [int(blk[ZIGZAG[i]]) for i in range(64)]
                last = max([i for i in range(1, 64) if zz[i] != 0], default=0)
                for i in range(1, last + 1):
                    if zz[i] == 0:
                        run += 1
                        continue
                    while run > 15:
                        acf[k][0xF0] = acf[k].get(0xF0, 0) + 1
                        symbols.append(("ac", k, 0xF0, 0, 0))
                        run -= 16
                    s = category(zz[i])
                    rs = run << 4 | s
                    acf[k][rs] = acf[k].get(rs, 0) + 1
                    symbols.append(("ac", k, rs, zz[i], s))
                    run = 0
                if last < 63:
                    acf[k][0] = acf[k].get(0, 0) + 1
                    symbols.append(("ac", k, 0, 0, 0))
        dct, act = [], []
        for k in range(len(comps)):
            counts, lengths = code_lengths(dcf[k])
            syms, codes = canonical(counts, lengths)
            out += segment(0xC4, dht(0, k, counts, syms))
            dct.append(codes)
            counts, lengths = code_lengths(acf[k])
            syms, codes = canonical(counts, lengths)
            out += segment(0xC4, dht(1, k, counts, syms))
            act.append(codes)
        sos = bytes([len(comps)])
        for k, ci in enumerate(comps):
            sos += bytes([ids[ci], k << 4 | k])
        sos += bytes([0, 63, 0])
        out += segment(0xDA, sos)
        bw = BitWriter()
        rst = 0
        for sym in symbols:
            if sym[0] == "rst":
                bw.flush()
                out += bw.out
                out += bytes([0xFF, 0xD0 + (rst & 7)])
                rst += 1
                bw = BitWriter()
            elif sym[0] == "dc":
                _, k, s, diff = sym
                bw.put(*dct[k][s])
                if s:
                    bw.put(value_bits(diff, s), s)
            else:
                _, k, rs, v, s = sym
                bw.put(*act[k][rs])
                if s:
                    bw.put(value_bits(v, s), s)
        bw.flush()
        out += bw.out
    out += b"\xFF\xD9"
    return bytes(out)
