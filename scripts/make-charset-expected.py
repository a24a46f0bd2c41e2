#!/usr/bin/env python3
"""Reference values for the DICOM reader's character-set decoding, computed by pydicom 3.0.2.

Writes into Tests/DICOMTests/Resources/charset/:
  expected.json     every text element of every file in pydicom's charset_files
                    (.pydeps/pydicom/data/charset_files/*.dcm), keyed by file name and tag
                    path ("00100010", "00321064[0].00100010"), with PN component groups, and
                    what `radgridctl inspect --json` must report (PatientName, StudyDescription).
  synthetic.json    hand-built values, one or more per character-set family (incl. malformed
                    input), each read by pydicom from a minimal data set with its own (0008,0005).
  differential.json seeded random byte strings (escape sequences, delimiters, multibyte
                    characters, truncations, stray bytes) decoded by pydicom's decode_bytes
                    with the (0008,0005) terms they were generated for.
  corpus-text.json  PatientName / StudyDescription as pydicom reads them from the reference
                    corpus (../shared/corpus/dicom), when that folder exists.

Run after scripts/pydeps.sh:   python3 scripts/make-charset-expected.py
"""
import glob
import io
import json
import os
import random
import struct
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".pydeps"))

import pydicom  # noqa: E402
from pydicom.charset import convert_encodings, decode_bytes  # noqa: E402
from pydicom.multival import MultiValue  # noqa: E402
from pydicom.valuerep import TEXT_VR_DELIMS, PersonName  # noqa: E402

if pydicom.__version__ != "3.0.2":
    sys.exit(f"pydicom 3.0.2 expected, found {pydicom.__version__}: run scripts/pydeps.sh")

OUT = os.path.join(ROOT, "Tests", "DICOMTests", "Resources", "charset")
CHARSET_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "charset_files")
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "dicom")

# VRs pydicom returns as text (DS and IS are numbers and are left out).
TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}

warnings.simplefilter("ignore")


def values_of(value):
    """pydicom's value as a list of strings (one per value; [] when empty)."""
    if value is None:
        return []
    if isinstance(value, (MultiValue, list)):
        return [str(v) for v in value]
    text = str(value)
    return [] if text == "" else [text]


def groups_of(value):
    if value is None:
        return []
    items = list(value) if isinstance(value, (MultiValue, list)) else [value]
    return [list(pn.components) if isinstance(pn, PersonName) else [str(pn)] for pn in items]


def inspect_value(value):
    """The corpus expected.json convention: str() of the value, a list when multi-valued."""
    if isinstance(value, (MultiValue, list)):
        return [str(v) for v in value]
    return str(value)


def walk(ds, prefix, out):
    for tag in list(ds.keys()):
        file_vr = ds.get_item(tag).VR  # before pydicom converts the element
        elem = ds[tag]
        path = prefix + f"{elem.tag.group:04X}{elem.tag.element:04X}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                walk(item, f"{path}[{i}].", out)
        elif elem.VR in TEXT_VRS:
            entry = {"vr": elem.VR, "values": values_of(elem.value)}
            if elem.VR == "PN":
                entry["groups"] = groups_of(elem.value) if entry["values"] else []
            if file_vr == "UN":
                entry["private_dictionary"] = True  # VR UN in the file, resolved by pydicom's private dictionary
            out[path] = entry


def charset_files():
    result = {}
    for path in sorted(glob.glob(os.path.join(CHARSET_FILES, "*.dcm"))):
        ds = pydicom.dcmread(path)
        elements = {}
        walk(ds, "", elements)
        inspect = {}
        for keyword in ("PatientName", "StudyDescription"):
            if keyword in ds:
                inspect[keyword] = inspect_value(ds[keyword].value)
        result[os.path.basename(path)] = {"elements": elements, "inspect": inspect}
    return result


# MARK: synthetic data sets

def element(group, elem, vr, value):
    """Explicit VR Little Endian element (short form for the VRs used here)."""
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    if vr in ("UT", "UC", "SQ", "UN"):
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def dataset_bytes(terms, vr, raw):
    out = b""
    if terms is not None:
        out += element(0x0008, 0x0005, "CS", "\\".join(terms).encode("latin-1"))
    tag = {"PN": (0x0010, 0x0010), "LO": (0x0008, 0x1030), "SH": (0x0008, 0x0050), "LT": (0x0010, 0x4000),
           "ST": (0x0008, 0x0081), "UT": (0x0040, 0xA160), "UC": (0x0018, 0x9277), "CS": (0x0008, 0x0060)}[vr]
    return out + element(tag[0], tag[1], vr, raw), tag


def read_value(terms, vr, raw):
    data, tag = dataset_bytes(terms, vr, raw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        value = ds[tag].value
        values = values_of(value)
        groups = groups_of(value) if vr == "PN" else None
    return values, groups, len(caught)


def jis(text, codec="iso2022_jp"):
    """Text as a JIS X 0208 / 0212 run with its escape sequence and no trailing reset."""
    encoded = text.encode(codec)
    return encoded[:-3] if encoded.endswith(b"\x1b(B") else encoded


SYNTHETIC = [
    # (name, family, terms, vr, bytes, deviation)
    ("gb18030 person name", "chinese", ["GB18030"], "PN", "Wang^XiaoDong=王^小东=".encode("gb18030"), None),
    ("gb18030 four-byte character", "chinese", ["GB18030"], "LO", "𠀀 ㄅ €".encode("gb18030"), None),
    ("gbk person name", "chinese", ["GBK"], "PN", "Wang^XiaoDong=王^小東=".encode("gbk"), None),
    ("iso 2022 gbk term", "chinese", ["ISO 2022 GBK"], "LO", "胸部平扫".encode("gbk"), None),
    ("iso 2022 58 term (GB2312 without escapes)", "chinese", ["ISO 2022 58"], "PN", "Zhang^San=张^三".encode("gb2312"), None),
    ("iso 2022 ir 58 as value 1 (no escapes)", "chinese", ["ISO 2022 IR 58"], "LO", "胸部".encode("gb2312"), None),
    ("iso 2022 ir 58 with escapes", "chinese", ["", "ISO 2022 IR 58"], "PN",
     b"Zhang^San=\x1b$)A" + "张".encode("gb2312") + b"^\x1b$)A" + "三".encode("gb2312"),
     "pydicom 3.0.2 decodes the fragment including its escape sequence (\\x1b$)A stays in the text); "
     "we remove the escape as PS3.5 6.1.2.5 requires"),
    ("japanese IR 13 + IR 87 in each PN group", "japanese", ["ISO 2022 IR 13", "ISO 2022 IR 87"], "PN",
     "ﾔﾏﾀﾞ^ﾀﾛｳ".encode("shift_jis") + b"=" + jis("山田") + b"\x1b(J^" + jis("太郎") + b"\x1b(J="
     + jis("やまだ") + b"\x1b(J^" + jis("たろう") + b"\x1b(J", None),
    ("japanese IR 87 + IR 159 (JIS X 0212)", "japanese", ["", "ISO 2022 IR 87", "ISO 2022 IR 159"], "PN",
     b"Kikuchi^Ayako=" + jis("菊池") + b"\x1b(B^" + jis("丂", "iso2022_jp_2") + b"\x1b(B", None),
    ("japanese IR 13 half-width katakana only", "japanese", ["ISO_IR 13"], "SH", "ｶﾞｲﾗｲ".encode("shift_jis"), None),
    ("japanese long text with line breaks", "japanese", ["", "ISO 2022 IR 87"], "LT",
     jis("胸部") + b"\x1b(B\r\n" + jis("所見なし") + b"\x1b(B", None),
    ("korean IR 149 in each PN group", "korean", ["", "ISO 2022 IR 149"], "PN",
     b"Hong^Gildong=\x1b$)C" + "洪".encode("euc_kr") + b"^\x1b$)C" + "吉洞".encode("euc_kr")
     + b"=\x1b$)C" + "홍".encode("euc_kr") + b"^\x1b$)C" + "길동".encode("euc_kr"), None),
    ("korean IR 149 as value 1", "korean", ["ISO 2022 IR 149"], "LO", "흉부 촬영".encode("euc_kr"), None),
    ("korean KS X 1001 make-up sequence", "korean", ["ISO 2022 IR 149"], "LO", b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xa4 x", None),
    ("japanese IR 13 reads 0x5C and 0x7E as ASCII", "japanese", ["ISO_IR 13"], "LT", "ｶﾙﾃ\\~".encode("shift_jis"), None),
    ("latin-1", "latin", ["ISO_IR 100"], "PN", "Müller^Jérôme".encode("latin-1"), None),
    ("latin-2", "latin", ["ISO_IR 101"], "PN", "Dvořák^Łukasz".encode("iso8859_2"), None),
    ("latin-3", "latin", ["ISO_IR 109"], "LO", "Ħal Għargħur".encode("iso8859_3"), None),
    ("latin-4", "latin", ["ISO_IR 110"], "LO", "Ģirts Ķēniņš".encode("iso8859_4"), None),
    ("latin-5 (Turkish)", "latin", ["ISO_IR 148"], "PN", "Yılmaz^Şükrü".encode("iso8859_9"), None),
    ("latin-9", "latin", ["ISO_IR 203"], "LO", "Œuvre 5€ Šárka".encode("iso8859_15"),
     "pydicom 3.0.2 has no entry for ISO_IR 203: it warns and decodes Latin-1; we decode ISO 8859-15"),
    ("cyrillic", "cyrillic", ["ISO_IR 144"], "PN", "Люксембург^Иван".encode("iso8859_5"), None),
    ("greek", "greek", ["ISO_IR 126"], "PN", "Διονυσιος^Νίκος".encode("iso8859_7"), None),
    ("hebrew", "hebrew", ["ISO_IR 138"], "PN", "שרון^דבורה".encode("iso8859_8"), None),
    ("arabic", "arabic", ["ISO_IR 127"], "PN", "قباني^لنزار".encode("iso8859_6"), None),
    ("thai", "thai", ["ISO_IR 166"], "LO", "ภาษาไทย ทดสอบ".encode("tis_620"), None),
    ("utf-8", "utf8", ["ISO_IR 192"], "PN", "Wang^XiaoDong=王^小東=".encode("utf-8"), None),
    ("utf-8 multi-valued LO", "utf8", ["ISO_IR 192"], "LO", "胸部\\腹部 ".encode("utf-8"), None),
    ("iso 2022 latin-1 + cyrillic escapes", "cyrillic", ["ISO 2022 IR 100", "ISO 2022 IR 144"], "LO",
     b"M\xfcller \x1b-L" + "Иван".encode("iso8859_5") + b"\r\n\xfc", None),
    ("iso 2022 greek + hebrew escapes", "greek", ["", "ISO 2022 IR 126", "ISO 2022 IR 138"], "PN",
     b"\x1b-F" + "Νίκος".encode("iso8859_7") + b"=\x1b-H" + "דבורה".encode("iso8859_8"), None),
    ("iso 2022 thai", "thai", ["", "ISO 2022 IR 166"], "LO", b"\x1b-T" + "ไทย".encode("tis_620"), None),
    ("default repertoire keeps latin-1 bytes", "default", None, "PN", "Müller".encode("latin-1"), None),
    ("CS is not decoded with the specific character set", "default", ["ISO_IR 192"], "CS", b"\xc3\xa9T", None),
    # malformed input: pydicom warns and falls back; the reader must match and not crash
    ("truncated GB18030 four-byte sequence", "malformed", ["GB18030"], "LO", "王".encode("gb18030") + b"\x81\x30", None),
    ("truncated UTF-8 sequence", "malformed", ["ISO_IR 192"], "PN", b"Wang^\xe7\x8e", None),
    ("invalid UTF-8 bytes", "malformed", ["ISO_IR 192"], "LO", b"a\xff\xc0\xafb\xed\xa0\x80c", None),
    ("truncated JIS X 0208 run", "malformed", ["", "ISO 2022 IR 87"], "LO", jis("山田")[:-1], None),
    ("JIS X 0208 run broken by a high byte", "malformed", ["", "ISO 2022 IR 87"], "LO", jis("山田") + b"\xb0", None),
    ("unknown escape sequence", "malformed", ["", "ISO 2022 IR 87"], "PN", b"Yamada^\x1b(ZTarou", None),
    ("escape for a character set not in (0008,0005)", "malformed", ["", "ISO 2022 IR 87"], "LO", b"a\x1b-L\xbb", None),
    ("lone escape at the end", "malformed", ["ISO_IR 100"], "LO", b"abc\x1b", None),
    ("unknown term", "malformed", ["ISO_IR 999"], "PN", "Müller".encode("latin-1"), None),
    ("misspelled term ISO IR 100", "malformed", ["ISO IR 100"], "PN", "Müller".encode("latin-1"), None),
    ("misspelled term ISO-2022-IR-87", "malformed", ["", "ISO-2022-IR-87"], "PN", b"=" + jis("山田") + b"\x1b(B", None),
    ("stand-alone term with extensions", "malformed", ["ISO_IR 192", "GB18030"], "LO", "王".encode("utf-8"), None),
    ("stand-alone term as an extension", "malformed", ["ISO 2022 IR 6", "ISO_IR 192"], "LO", "Müller".encode("latin-1"), None),
    ("undefined byte in ISO 8859-6", "malformed", ["ISO_IR 127"], "LO", b"a\xa1b", None),
    ("truncated Korean pair", "malformed", ["", "ISO 2022 IR 149"], "LO", b"\x1b$)C\xb1", None),
    ("unmapped GBK pair", "malformed", ["GBK"], "LO", b"\x80A\xa1\x40B", None),
    ("KS X 1001:2002 addition unknown to Python", "malformed", ["", "ISO 2022 IR 149"], "LO", b"\x1b$)C\xa2\xe8\xb1\xe6", None),
    ("JIS X 0212 0x2237 is a tilde", "japanese", ["", "ISO 2022 IR 87", "ISO 2022 IR 159"], "LO", b"\x1b$(D\"7\x1b(B", None),
    ("python codec name as term", "malformed", ["latin1"], "LO", "Müller".encode("latin-1"), None),
]


def standard_value(name, values):
    """What PS3.5 gives for the deviation cases (computed with Python's own codecs)."""
    if name == "iso 2022 ir 58 with escapes":
        raw = b"Zhang^San=\x1b$)A" + "张".encode("gb2312") + b"^\x1b$)A" + "三".encode("gb2312")
        return [raw.replace(b"\x1b$)A", b"").decode("gb2312")]
    if name == "latin-9":
        return ["Œuvre 5€ Šárka"]
    return values


def synthetic():
    cases = []
    for name, family, terms, vr, raw, deviation in SYNTHETIC:
        values, groups, warned = read_value(terms, vr, raw)
        case = {"name": name, "family": family, "terms": terms, "vr": vr, "hex": raw.hex(),
                "pydicom": values, "pydicom_warned": warned > 0}
        if groups is not None:
            case["groups"] = groups
        if deviation:
            case["deviation"] = deviation
            case["expected"] = standard_value(name, values)
        else:
            case["expected"] = values
        cases.append(case)
    return cases


# MARK: differential cases

CONFIGS = [
    [], ["ISO_IR 100"], ["ISO_IR 101"], ["ISO_IR 109"], ["ISO_IR 110"], ["ISO_IR 126"], ["ISO_IR 127"],
    ["ISO_IR 138"], ["ISO_IR 144"], ["ISO_IR 148"], ["ISO_IR 166"], ["ISO_IR 13"], ["ISO_IR 192"],
    ["GB18030"], ["GBK"], ["ISO 2022 GBK"], ["ISO 2022 58"], ["ISO 2022 IR 58"],
    ["", "ISO 2022 IR 87"], ["ISO 2022 IR 13", "ISO 2022 IR 87"], ["", "ISO 2022 IR 87", "ISO 2022 IR 159"],
    ["ISO 2022 IR 13", "ISO 2022 IR 87", "ISO 2022 IR 159"], ["", "ISO 2022 IR 149"], ["ISO 2022 IR 149"],
    ["ISO 2022 IR 6", "ISO 2022 IR 100", "ISO 2022 IR 144"], ["ISO 2022 IR 100"],
    ["", "ISO 2022 IR 126", "ISO 2022 IR 138"], ["", "ISO 2022 IR 166"], ["ISO 2022 IR 87"], ["ISO 2022 IR 159"],
    ["ISO 2022 IR 101", "ISO 2022 IR 109", "ISO 2022 IR 110", "ISO 2022 IR 148", "ISO 2022 IR 127"],
    ["ISO IR 100"], ["ISO-2022-IR-87"], ["foo"], ["ISO_IR 192", "GB18030"], ["ISO 2022 IR 6", "ISO_IR 192"],
    ["latin1"], [" ISO_IR 100"], ["ISO_IR 999"], ["", "ISO 2022 IR 87", "GBK"], ["utf-8"], ["ISO_IR 6"],
    ["iso_ir_6"], ["euc_kr"], ["ISO 2022 IR 6"], ["", ""],
]

ESCAPES = [b"\x1b(B", b"\x1b-A", b"\x1b)I", b"\x1b(J", b"\x1b$B", b"\x1b-B", b"\x1b-C", b"\x1b-D", b"\x1b-F",
           b"\x1b-G", b"\x1b-H", b"\x1b-L", b"\x1b-M", b"\x1b-T", b"\x1b$)C", b"\x1b$(D"]
BAD_ESCAPES = [b"\x1b", b"\x1b$", b"\x1b(Z", b"\x1b$)Q", b"\x1bN", b"\x1b$(", b"\x1b-b", b"\x1b$(D\"7", b"\x1b$@", b"\x1b$A"]
SAMPLES = {
    "iso2022_jp": "山田太郎やまだたろう所見胸部", "iso2022_jp_2": "丂丄丅丌亍", "shift_jis": "ﾔﾏﾀﾞﾀﾛｳ山田",
    "euc_kr": "洪吉洞홍길동흉부", "gb2312": "王小东张三胸部", "gbk": "王小東镕", "gb18030": "王小东𠀀ㄅ€ḿ\ue7c7\ue78d\ue816龴︐",
    "utf-8": "Müller王小東😀", "latin_1": "Müllerçé", "iso8859_2": "ŁódźČ", "iso8859_3": "ĦĠŻ", "iso8859_4": "ĢĶŅ",
    "iso8859_5": "Люкс", "iso8859_6": "قباني", "iso8859_7": "Διον€", "iso8859_8": "שרון", "iso8859_9": "ŞğıÜ",
    "tis_620": "ภาษาไทย",
}
ASCII = b"abcXYZ0189 .-"
DELIMS = [b"^", b"=", b"\\", b"\r", b"\n", b"\t", b"\x0c", b" "]


TERM_CODECS = {
    "ISO_IR 100": "latin_1", "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3", "ISO_IR 110": "iso8859_4",
    "ISO_IR 126": "iso8859_7", "ISO_IR 127": "iso8859_6", "ISO_IR 138": "iso8859_8", "ISO_IR 144": "iso8859_5",
    "ISO_IR 148": "iso8859_9", "ISO_IR 166": "tis_620", "ISO_IR 13": "shift_jis", "ISO_IR 192": "utf-8",
    "GB18030": "gb18030", "GBK": "gbk", "ISO 2022 GBK": "gbk", "ISO 2022 58": "gb2312", "ISO 2022 IR 58": "gb2312",
    "ISO 2022 IR 87": "iso2022_jp", "ISO 2022 IR 159": "iso2022_jp_2", "ISO 2022 IR 149": "euc_kr",
}
for _n, _c in list(TERM_CODECS.items()):
    if _n.startswith("ISO_IR "):
        TERM_CODECS["ISO 2022 IR " + _n[7:]] = _c
TERM_ESCAPES = {
    "ISO 2022 IR 100": b"\x1b-A", "ISO 2022 IR 101": b"\x1b-B", "ISO 2022 IR 109": b"\x1b-C",
    "ISO 2022 IR 110": b"\x1b-D", "ISO 2022 IR 126": b"\x1b-F", "ISO 2022 IR 127": b"\x1b-G",
    "ISO 2022 IR 138": b"\x1b-H", "ISO 2022 IR 144": b"\x1b-L", "ISO 2022 IR 148": b"\x1b-M",
    "ISO 2022 IR 166": b"\x1b-T", "ISO 2022 IR 13": b"\x1b)I", "ISO 2022 IR 149": b"\x1b$)C",
}


def encoded_sample(rng, codec):
    text = "".join(rng.choice(SAMPLES[codec]) for _ in range(rng.randint(1, 3)))
    if codec.startswith("iso2022"):
        encoded = jis(text, codec)
        if rng.random() < 0.3:
            encoded = encoded.split(b"\x1b", 1)[-1][2 if codec == "iso2022_jp" else 3:]  # bare 7-bit pairs
    else:
        encoded = text.encode(codec)
    if rng.random() < 0.1:
        encoded = encoded[:-1]  # truncated character
    return encoded


def well_formed_piece(rng, terms):
    """Text the way a conforming writer would encode it for these terms."""
    term = rng.choice(terms) if terms else ""
    codec = TERM_CODECS.get(term)
    if codec is None or codec not in SAMPLES:
        return bytes(rng.choice(ASCII) for _ in range(rng.randint(1, 4)))
    if term == terms[0] and not codec.startswith("iso2022"):
        return encoded_sample(rng, codec)
    if codec.startswith("iso2022"):
        return encoded_sample(rng, codec) + (b"\x1b(B" if rng.random() < 0.7 else b"")
    return TERM_ESCAPES.get(term, b"") + encoded_sample(rng, codec)


def piece(rng, terms):
    kind = rng.random()
    if kind < 0.40:
        return well_formed_piece(rng, terms)
    if kind < 0.55:
        return bytes(rng.choice(ASCII) for _ in range(rng.randint(1, 4)))
    if kind < 0.68:
        return rng.choice(DELIMS)
    if kind < 0.75:
        return rng.choice(ESCAPES)
    if kind < 0.78:
        return rng.choice(BAD_ESCAPES)
    if kind < 0.82:
        return bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 2)))
    if kind < 0.84:
        return bytes([rng.choice([0x00, 0x0E, 0x0F, 0x1B, 0x7F, 0x20])])
    return encoded_sample(rng, rng.choice(sorted(SAMPLES)))


def differential(count_per_config=36):
    rng = random.Random(20240611)
    configs = []
    for terms in CONFIGS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encodings = convert_encodings(terms if terms else None)
        cases = []
        for _ in range(count_per_config):
            raw = b"".join(piece(rng, terms) for _ in range(rng.randint(1, 6)))
            if "iso_ir_58" in encodings:
                raw = raw.replace(b"\x1b$)A", b"")  # pydicom keeps this escape in the text (see synthetic.json)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                text = decode_bytes(raw, encodings, TEXT_VR_DELIMS)
            cases.append([raw.hex(), text])
        configs.append({"terms": terms, "cases": cases})
    return configs


def corpus_text():
    if not os.path.isdir(CORPUS):
        return None
    with open(os.path.join(CORPUS, "expected.json")) as f:
        expected = json.load(f)
    result = {}
    for name in sorted(expected):
        if "read_error" in expected[name]:
            continue
        ds = pydicom.dcmread(os.path.join(CORPUS, name), force=True)
        result[name] = {k: inspect_value(ds[k].value) for k in ("PatientName", "StudyDescription") if k in ds}
    return result


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, sort_keys=True, indent=1)
        f.write("\n")


def main():
    files = charset_files()
    if not files:
        sys.exit(f"no charset files in {CHARSET_FILES}: run scripts/pydeps.sh")
    write("expected.json", files)
    write("synthetic.json", synthetic())
    write("differential.json", differential())
    corpus = corpus_text()
    if corpus is not None:
        write("corpus-text.json", corpus)
    print(f"{len(files)} charset files, {len(SYNTHETIC)} synthetic cases, {len(CONFIGS)} differential configurations")


if __name__ == "__main__":
    main()
